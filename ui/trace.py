"""Where a reply's first second goes: wall-clock marks of a turn's stages, for scripts/bench_browser.py --trace.

Off unless the environment names a file: ``A2LLM_TRACE=/tmp/trace.jsonl python app.py``. Each mark is one JSON line
``{"t": epoch seconds, "event": name, ...}`` appended (and flushed) at once, so the benchmark can read them while the
app runs and line them up with the browser's clock (``performance.timeOrigin + performance.now()``, also epoch ms).
Off, :func:`mark` is one dictionary lookup: the app pays nothing for it.

Events (per turn, in order): ``turn`` (the handler accepted a typed turn), ``first_audio`` / ``first_motion``
(the engine's first speech and motion chunks reach the media threads), ``rendered`` (a batch of frames rendered:
``frames``), ``video_encoded`` / ``encoded`` (a segment's video-only mp4 / its MPEG-TS piece, or its mp4 with
speech, written: ``segment``), ``yielded`` (a segment handed to Gradio: ``segment``), ``gradio_in`` / ``gradio_out``
(the reply video's ``stream_output``, :class:`ui.reply_video.ReplyVideo`: a pre-muxed piece passed on, or Gradio's
own probe, audio decode, AAC and re-mux of an mp4).
"""
from __future__ import annotations

import json
import os
import threading
import time

_LOCK = threading.Lock()


def mark(event: str, **fields) -> None:
    """Append one mark to the trace file when tracing is on (thread-safe)."""
    path = os.environ.get("A2LLM_TRACE")
    if not path:
        return
    line = json.dumps({"t": time.time(), "event": event, "thread": threading.current_thread().name, **fields})
    with _LOCK, open(path, "a") as f:
        f.write(line + "\n")


def read(path: str) -> list[dict]:
    """The marks written so far (a line being written is skipped)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    except FileNotFoundError:
        pass
    return out
