"""Conversation tab: speak or type, and the avatar answers with streamed video (speech + face) and live metrics."""
from __future__ import annotations

import time

import gradio as gr

from ui.conversation import SAMPLE_RATE, ChatSession, chat_audio, chat_text, prepare_audio, voice_choices
from ui.handsfree import HandsFree

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


def respond(text, mic, session: ChatSession | None, head: str, checkpoint: str, voice: str | None = None):
    """One turn: yields (segment, chat, metrics, stages, plot, video file, motion file, text box, session)."""
    session = session or ChatSession(checkpoint=checkpoint, head=head)
    session.head, session.checkpoint, session.voice = head, checkpoint, voice or None
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
                       str(up.video) if up.video else None, _motion_files(up), "", session)
    except (ValueError, RuntimeError, OSError) as e:
        raise gr.Error(str(e)) from e


def _motion_files(up) -> list[str] | None:
    """The turn's motion downloads: the .npz, then its ARKit .json / .csv and the .glb."""
    return [str(p) for p in (up.motion, *up.exports) if p is not None] or None


def stop(session: ChatSession | None):
    if session is not None:
        session.cancel()


def clear(session: ChatSession | None):
    if session is not None:
        session.reset()
    return [], _metrics_md(None), [], None, session


# ------------------------------------------------------------------------------------------ hands-free
# Wiring: the microphone's .stream handler only runs the end-of-turn detector (milliseconds per chunk: Gradio
# keeps just the newest chunk while a handler runs, so it must never wait on a reply). A finished turn bumps the
# `turns` State; that State's .change runs handsfree_respond, an ordinary queued event, which answers through
# respond (streamed segments, chat, metrics) while the stream keeps listening, so the user can barge in.
# A barge-in bumps the `cuts` State, whose .change pauses the avatar's video in the browser (generation is
# faster than real time, so most of a reply is heard after its generation has ended).
HANDSFREE_EVERY = 0.25          # s of audio per streamed chunk: end-of-turn latency is 0.7 s silence + this
PAUSE_AVATAR_JS = "() => { document.querySelectorAll('#a2llm-avatar video').forEach(v => v.pause()); }"


def handsfree_stream(chunk, hf: HandsFree | None, turns: int, cuts: int):
    """One streamed microphone chunk ((rate, int16 [N] or [N, C])) -> (hands-free state, turns, cuts, status)."""
    if chunk is None:
        return hf, turns, cuts, gr.skip()
    hf = hf or HandsFree()
    try:
        fed = hf.feed(*chunk)
    except ValueError as e:
        raise gr.Error(f"hands-free microphone: {e}") from e
    return hf, turns + fed.turns, cuts + fed.barged_in, hf.status()


def handsfree_start(hf: HandsFree | None):
    """Recording (re)starts: a fresh stream, nothing left over from the last one. The VAD model is loaded here,
    not in the first chunk's handler: its ~0.4 s load outlasts the 0.25 s chunk interval, and Gradio keeps only
    the newest chunk while a handler runs, so the first syllables would be lost."""
    hf = hf or HandsFree()
    hf.detector.model                       # noqa: B018 (loads and warms it up)
    hf.reset()
    return hf, "👂 listening…"


def handsfree_stop(hf: HandsFree | None, turns: int):
    """Recording stops: a turn being spoken ends here and is answered."""
    fed = hf.stop() if hf is not None else None
    return hf, turns + (fed.turns if fed else 0), "⏹️ hands-free off: press record to talk again"


def handsfree_respond(hf: HandsFree | None, session: ChatSession | None, head: str, checkpoint: str,
                      voice: str | None = None):
    """Answer the waiting hands-free turn(s) through respond; yields respond's outputs (the text box untouched)."""
    keep = gr.update()
    audio = hf.take_turn() if hf is not None else None
    if audio is None:                     # a trigger whose turns an earlier run already answered
        yield (keep,) * 9
        return
    session = session or ChatSession(checkpoint=checkpoint, head=head)
    hf.begin_reply(session)               # from here on the user's voice cancels this reply
    started, speech_s = None, 0.0
    try:
        for out in respond("", (SAMPLE_RATE, audio), session, head, checkpoint, voice):
            if started is None and isinstance(out[0], str):
                started = time.monotonic()            # the first segment is on its way to the browser
            if isinstance(out[2], str):               # the final update: the metrics are in
                speech_s = session.turns[-1]["speech_s"]
            yield out[:7] + (keep,) + out[8:]
    finally:
        # the browser plays the reply for about its speech length after the first segment arrived
        left = (started + speech_s - time.monotonic()) if started is not None else 0.0
        hf.end_reply(session, playing_for=max(0.0, left + 1.0))


def handsfree_clear(hf: HandsFree | None):
    if hf is not None:
        hf.reset()


def api_chat_text(text: str, head: str = "open", checkpoint: str = "checkpoints/a2llm-nano",
                  voice: str | None = None):
    try:
        return chat_text(text, checkpoint=checkpoint, head=head, voice=voice or None)
    except (ValueError, RuntimeError, OSError) as e:
        raise gr.Error(str(e)) from e


def api_chat_audio(path, head: str = "open", checkpoint: str = "checkpoints/a2llm-nano"):
    if path is None:
        raise gr.Error("Upload an audio file with the spoken question.")
    try:
        return chat_audio(getattr(path, "name", path), checkpoint=checkpoint, head=head)
    except (ValueError, RuntimeError, OSError) as e:
        raise gr.Error(str(e)) from e


def _wire_handsfree(mic, status, new, outs, session, head, ckpt, voice) -> None:
    """The hands-free events (see the comment above handsfree_stream)."""
    hf, turns, cuts = gr.State(None), gr.State(0), gr.State(0)
    # concurrency_limit=None: a stream holds its queue slot for as long as the user talks, and costs a few ms
    # a chunk, so it must not keep other sessions' streams waiting. No time_limit: it counts processing time
    # (~4 % of the wall clock here), and a closed tab ends the stream anyway (Gradio waits 30 s for a chunk).
    mic.stream(handsfree_stream, [mic, hf, turns, cuts], [hf, turns, cuts, status], stream_every=HANDSFREE_EVERY,
               concurrency_limit=None, show_progress="hidden")
    mic.start_recording(handsfree_start, [hf], [hf, status], show_progress="hidden")
    mic.stop_recording(handsfree_stop, [hf, turns], [hf, turns, status], show_progress="hidden")
    turns.change(handsfree_respond, [hf, session, head, ckpt, voice], outs)
    cuts.change(None, None, None, js=PAUSE_AVATAR_JS)
    new.click(handsfree_clear, [hf], None)


def build(head_choices: list[str], default_head: str, checkpoint: str) -> None:
    """Add the Conversation tab's components to the current Blocks."""
    session = gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            video = gr.Video(label="Avatar", streaming=True, autoplay=True, height=384, elem_id="a2llm-avatar")
            chat = gr.Chatbot(label="Dialogue", height=260)
            with gr.Row():
                text = gr.Textbox(label="Type a message", placeholder="How was the concert?", scale=4)
                send = gr.Button("Send", variant="primary", scale=1)
            mic = gr.Audio(label="Or speak (the turn is sent when you stop recording)", sources=["microphone", "upload"],
                           type="numpy")
            with gr.Row():
                halt = gr.Button("Stop (barge-in)")
                new = gr.Button("New dialogue")
            with gr.Accordion("Hands-free: just talk", open=False):
                gr.Markdown("Press record once and talk: a pause of about a second ends your turn and the avatar "
                            "answers; speak over it to interrupt. Use headphones, or its voice may interrupt it.")
                hf_mic = gr.Audio(label="Hands-free microphone", sources=["microphone"], streaming=True,
                                  type="numpy")
                hf_status = gr.Markdown("⏹️ hands-free off: press record to talk")
        with gr.Column(scale=2):
            metrics = gr.Markdown(_metrics_md(None))
            plot = gr.Image(label="This session's turns", type="filepath", height=220)
            stages = gr.Dataframe(headers=["stage", "ms"], label="Per-stage time of the last turn", interactive=False)
            with gr.Row():
                head = gr.Dropdown(head_choices, value=default_head, label="Head")
                voices = voice_choices(checkpoint)
                voice = gr.Dropdown(voices, value=voices[0], label="Voice", allow_custom_value=True,
                                    info="applies from the next turn")
                ckpt = gr.Textbox(value=checkpoint, label="Checkpoint")
            full = gr.File(label="The turn's video (.mp4)")
            motion = gr.File(label="The turn's motion (.npz; ARKit-52 .json / .csv; glTF .glb of the head)",
                             file_count="multiple")
    outs = [video, chat, metrics, stages, plot, full, motion, text, session]
    send.click(respond, [text, gr.State(None), session, head, ckpt, voice], outs)
    text.submit(respond, [text, gr.State(None), session, head, ckpt, voice], outs)
    mic.stop_recording(respond, [gr.State(""), mic, session, head, ckpt, voice], outs)
    halt.click(stop, [session], None, queue=False)
    new.click(clear, [session], [chat, metrics, stages, plot, session])
    _wire_handsfree(hf_mic, hf_status, new, outs, session, head, ckpt, voice)
    # The typed turn as a plain API endpoint: text (+ an optional voice, "" = the default) in -> (final mp4,
    # metrics JSON).
    api_text, api_voice = gr.Textbox(visible=False), gr.Textbox(value="", visible=False)
    api_video, api_metrics = gr.Video(visible=False), gr.Textbox(visible=False)
    api_btn = gr.Button(visible=False)
    api_btn.click(lambda t, voice="": api_chat_text(t, default_head, checkpoint, voice), [api_text, api_voice],
                  [api_video, api_metrics], api_name="chat_text")
    # The spoken turn as an API endpoint: an audio file in (gr.File: no decoding before ours, so a corrupt or
    # non-audio upload gets our message) -> (final mp4, metrics JSON).
    api_file = gr.File(visible=False)
    api_btn2 = gr.Button(visible=False)
    api_btn2.click(lambda f: api_chat_audio(f, default_head, checkpoint), [api_file], [api_video, api_metrics],
                   api_name="chat_audio")
