"""Where a reply's first second goes: wall-clock marks of a turn's stages, for scripts/bench_browser.py --trace.

Off unless the environment names a file: ``A2LLM_TRACE=/tmp/trace.jsonl python app.py``. Each mark is one JSON line
``{"t": epoch seconds, "event": name, ...}`` appended (and flushed) at once, so the benchmark can read them while the
app runs and line them up with the browser's clock (``performance.timeOrigin + performance.now()``, also epoch ms).
Off, :func:`mark` is one dictionary lookup: the app pays nothing for it.

Events (per turn, in order): ``turn`` (the handler accepted a typed turn), ``first_audio`` / ``first_motion``
(the engine's first speech and motion chunks reach the media threads), ``rendered`` (a batch of frames rendered:
``frames``), ``encoded`` (a segment's mp4 written: ``index``), ``yielded`` (a segment handed to Gradio: ``index``),
``gradio_in`` / ``gradio_out`` (Gradio's own per-segment work, ``Video.stream_output``: probe, audio decode, AAC,
re-mux into MPEG-TS).
"""
from __future__ import annotations

import json
import os
import threading
import time

_LOCK = threading.Lock()


def enabled() -> bool:
    return bool(os.environ.get("A2LLM_TRACE"))


def mark(event: str, **fields) -> None:
    """Append one mark to the trace file when tracing is on (thread-safe)."""
    path = os.environ.get("A2LLM_TRACE")
    if not path:
        return
    line = json.dumps({"t": time.time(), "event": event, "thread": threading.current_thread().name, **fields})
    with _LOCK, open(path, "a") as f:
        f.write(line + "\n")


def trace_gradio_video() -> None:
    """Wrap ``gr.Video.stream_output`` (Gradio's per-segment probe / decode / AAC / re-mux) with marks, once."""
    if not enabled():
        return
    import gradio as gr

    original = gr.Video.stream_output
    if getattr(original, "_a2llm_traced", False):
        return

    async def stream_output(self, value, output_id, first_chunk):
        mark("gradio_in", first=bool(first_chunk), value=os.path.basename(str(value)) if value else None)
        try:
            return await original(self, value, output_id, first_chunk)
        finally:
            mark("gradio_out", first=bool(first_chunk))

    stream_output._a2llm_traced = True
    gr.Video.stream_output = stream_output


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
