"""The avatar's streamed video: ``gr.Video`` that plays the MPEG-TS pieces :class:`ui.media.TsMuxer` already made.

Gradio's streamed video re-does, per segment and on the handler's critical path, what the app can do beside
generation with the speech it already holds as PCM (probe, decode, AAC, re-mux: ~0.5 s before the first frame on
the 2-core machine). A segment handed over as a ``.ts`` with its ``.ts.json`` beside it (:func:`ui.media.premuxed`)
goes to the player as it is; anything else (an mp4) takes Gradio's own path unchanged.
"""
from __future__ import annotations

from pathlib import Path

import anyio
import gradio as gr

from ui import trace
from ui.media import premuxed


class ReplyVideo(gr.Video):
    """``gr.Video(streaming=True)`` for the reply; the page sees an ordinary video component."""

    is_template = True          # the front end uses gr.Video's own component (Gradio's template mechanism)

    async def stream_output(self, value, output_id: str, first_chunk: bool):
        trace.mark("gradio_in", first=bool(first_chunk), value=Path(str(value)).name if value else None)
        try:
            meta = premuxed(value)
            if meta is None:
                return await super().stream_output(value, output_id, first_chunk)
            if first_chunk:             # no Gradio-side encoder for this stream: drop a stale one
                self.end_stream_output(output_id)
            data = await anyio.to_thread.run_sync(Path(str(value)).read_bytes)
            file = {"path": output_id, "is_stream": True, "orig_name": "video-stream.mp4",
                    "meta": {"_type": "gradio.FileData"}}
            return {"data": data, "duration": float(meta["duration"]), "extension": ".ts"}, file
        finally:
            trace.mark("gradio_out", first=bool(first_chunk))
