"""The conversation as plain API endpoints (for gradio_client), beside the tab's own events:

* ``/chat_text``: ``text``, ``voice`` ("" = the default) -> ``video`` (the turn's mp4, ``turn-01.mp4``) and
  ``metrics`` (a dict: ttft_ms, ttfa_ms, rtf, speech_s, text, heard, turn);
* ``/chat_audio``: ``audio`` (a WAV / FLAC / OGG / MP3 file), ``voice`` -> the same, ``heard`` holding what the
  model understood.

Each call is a fresh one-turn dialogue on the app's default head and checkpoint. A refused request raises an
error whose message says why (logged in one line, no server path in it).
"""
from __future__ import annotations

import gradio as gr

from ui.conversation import chat_audio, chat_text
from ui.errors import refuse


def api_chat_text(text: str, voice: str = "", head: str = "open", checkpoint: str = "checkpoints/a2llm-nano"):
    try:
        return chat_text(text, checkpoint=checkpoint, head=head, voice=voice or None)
    except (ValueError, RuntimeError, OSError) as e:
        raise refuse("chat_text", e) from e


def api_chat_audio(path, voice: str = "", head: str = "open", checkpoint: str = "checkpoints/a2llm-nano"):
    if path is None:
        raise refuse("chat_audio", "Upload an audio file with the spoken question.")
    try:
        return chat_audio(getattr(path, "name", path), checkpoint=checkpoint, head=head, voice=voice or None)
    except (ValueError, RuntimeError, OSError) as e:
        raise refuse("chat_audio", e) from e


def build(default_head: str, checkpoint: str) -> None:
    """The two endpoints, on hidden components (their labels name the inputs and outputs in the API page)."""
    with gr.Row(visible=False):
        text = gr.Textbox(label="text")
        voice = gr.Textbox(label="voice", value="")
        # gr.File, not gr.Audio: nothing decodes the upload before us, so a corrupt or non-audio file gets our message
        audio = gr.File(label="audio")
        video = gr.Video(label="video")
        metrics = gr.JSON(label="metrics")
        text_btn, audio_btn = gr.Button(), gr.Button()
    text_btn.click(lambda t, v="": api_chat_text(t, v, default_head, checkpoint), [text, voice], [video, metrics],
                   api_name="chat_text")
    audio_btn.click(lambda f, v="": api_chat_audio(f, v, default_head, checkpoint), [audio, voice], [video, metrics],
                    api_name="chat_audio")
