"""Conversation tab: speak or type, and the avatar answers with streamed video (speech + face) and live metrics."""
from __future__ import annotations

import gradio as gr

from ui.conversation import ChatSession, chat_text, prepare_audio

STAGE_ROWS = ("encoder", "prefill", "decode", "connector", "tokenizer_decode", "detokenizer")


def _metrics_md(m: dict | None) -> str:
    if not m:
        return "**TTFT** – · **TTFA** – · **RTF** –"
    return (f"**TTFT** {m['ttft_ms']:.0f} ms · **TTFA** {m['ttfa_ms']:.0f} ms · **RTF** {m['rtf']:.2f} · "
            f"{m['speech_s']:.1f} s of speech{' · cut (barge-in)' if m['cancelled'] else ''}")


def _stages(m: dict | None) -> list[list]:
    return [[k, round(m["stages"].get(k, 0.0), 1)] for k in STAGE_ROWS] if m else []


def _plot(turns: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ui.files import new_output

    fig, ax = plt.subplots(figsize=(4, 2.4))
    x = range(1, len(turns) + 1)
    ax.plot(x, [t["ttft_ms"] for t in turns], "o-", label="TTFT")
    ax.plot(x, [t["ttfa_ms"] for t in turns], "s-", label="TTFA")
    ax.set_xlabel("turn")
    ax.set_ylabel("ms")
    ax2 = ax.twinx()
    ax2.plot(x, [t["rtf"] for t in turns], "^--", color="C2", label="RTF")
    ax2.set_ylabel("RTF")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path = new_output(".png", "turns")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def respond(text, mic, session: ChatSession | None, head: str, checkpoint: str):
    """One turn: yields (segment, chat, metrics, stages, plot, video file, motion file, text box, session)."""
    session = session or ChatSession(checkpoint=checkpoint, head=head)
    session.head, session.checkpoint = head, checkpoint
    audio = None
    if mic is not None:
        try:
            audio = prepare_audio(*mic)
        except ValueError as e:
            raise gr.Error(str(e)) from e
    elif not text or not text.strip():
        raise gr.Error("Type a message or record a question first.")
    keep = gr.update()
    try:
        for up in session.respond(text=None if audio is not None else text, audio=audio):
            if up.metrics is None:
                yield (str(up.segment) if up.segment else keep, session.history, keep, keep, keep, keep, keep,
                       keep, session)
            else:
                yield (keep, session.history, _metrics_md(up.metrics), _stages(up.metrics), _plot(session.turns),
                       str(up.video) if up.video else None, str(up.motion) if up.motion else None, "", session)
    except (ValueError, RuntimeError, OSError) as e:
        raise gr.Error(str(e)) from e


def stop(session: ChatSession | None):
    if session is not None:
        session.cancel()


def clear(session: ChatSession | None):
    if session is not None:
        session.reset()
    return [], _metrics_md(None), [], None, session


def api_chat_text(text: str, head: str = "open", checkpoint: str = "checkpoints/a2llm-nano"):
    try:
        return chat_text(text, checkpoint=checkpoint, head=head)
    except (ValueError, RuntimeError, OSError) as e:
        raise gr.Error(str(e)) from e


def build(head_choices: list[str], default_head: str, checkpoint: str) -> None:
    """Add the Conversation tab's components to the current Blocks."""
    session = gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            video = gr.Video(label="Avatar", streaming=True, autoplay=True, height=384)
            chat = gr.Chatbot(label="Dialogue", height=260)
            with gr.Row():
                text = gr.Textbox(label="Type a message", placeholder="How was the concert?", scale=4)
                send = gr.Button("Send", variant="primary", scale=1)
            mic = gr.Audio(label="Or speak (the turn is sent when you stop recording)", sources=["microphone", "upload"],
                           type="numpy")
            with gr.Row():
                halt = gr.Button("Stop (barge-in)")
                new = gr.Button("New dialogue")
        with gr.Column(scale=2):
            metrics = gr.Markdown(_metrics_md(None))
            plot = gr.Image(label="This session's turns", type="filepath", height=220)
            stages = gr.Dataframe(headers=["stage", "ms"], label="Per-stage time of the last turn", interactive=False)
            with gr.Row():
                head = gr.Dropdown(head_choices, value=default_head, label="Head")
                ckpt = gr.Textbox(value=checkpoint, label="Checkpoint")
            full = gr.File(label="The turn's video (.mp4)")
            motion = gr.File(label="The turn's motion (.npz)")
    outs = [video, chat, metrics, stages, plot, full, motion, text, session]
    send.click(respond, [text, gr.State(None), session, head, ckpt], outs)
    text.submit(respond, [text, gr.State(None), session, head, ckpt], outs)
    mic.stop_recording(respond, [gr.State(""), mic, session, head, ckpt], outs)
    halt.click(stop, [session], None, queue=False)
    new.click(clear, [session], [chat, metrics, stages, plot, session])
    # The typed turn as a plain API endpoint: text in -> (final mp4, metrics JSON).
    api_text = gr.Textbox(visible=False)
    api_video, api_metrics = gr.Video(visible=False), gr.Textbox(visible=False)
    api_btn = gr.Button(visible=False)
    api_btn.click(lambda t: api_chat_text(t, default_head, checkpoint), [api_text], [api_video, api_metrics],
                  api_name="chat_text")
