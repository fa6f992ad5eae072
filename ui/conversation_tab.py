"""Conversation tab: speak or type, and the avatar answers with streamed video (speech + face) and live metrics.

Nothing a visitor sends breaks the session: a refused turn (no visible characters, over 1,000 characters, no
speech in a recording, a message the context cannot hold) shows in the message line under the text box, and every
panel and the dialogue stay as they were. Before the first turn the tab shows what the model can talk about,
clickable example questions and the avatar idling; it gives way to the streamed reply at the first turn.
"""
from __future__ import annotations

import time

import gradio as gr

from ui import checkpoints, trace
from ui.conversation import SAMPLE_RATE, ChatSession, prepare_audio, voice_choices
from ui.errors import note, status
from ui.handsfree import HandsFree
from ui.media import StreamConfig
from ui.reply_video import ReplyVideo
from ui.validate import check_speech, check_text

STAGE_ROWS = ("encoder", "prefill", "decode", "connector", "tokenizer_decode", "detokenizer")
#: How replies are streamed (the app's --segments); set by build().
SETTINGS = {"stream": StreamConfig(), "heads": None}


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


def _chat(session: ChatSession | None) -> list[dict]:
    """A copy of the dialogue (Gradio diffs each update against the last one it sent)."""
    return [dict(m) for m in session.history] if session is not None else []


def respond(text, mic, session: ChatSession | None, head: str, checkpoint: str, voice: str | None = None,
            vad: bool = True):
    """One turn: yields (segment, chat, metrics, stages, plot, video file, motion files, text box, session,
    message line, idle avatar). Never raises for a refused turn: the message line says why.

    ``mic``: (rate, samples) of a recorded turn (``text`` is then ignored); ``vad``: check it holds speech
    (hands-free turns were cut by a VAD already)."""
    keep = gr.update()

    def refused(message, where: str, first_turn: bool):
        shown = gr.update(visible=False) if first_turn else keep
        return (shown, _chat(session), keep, keep, keep, keep, keep, keep, session, status(note(where, message)),
                gr.update(visible=True) if first_turn else keep)

    first = session is None or not session.turns
    try:
        folder = str(checkpoints.resolve(checkpoint))
        heads = SETTINGS["heads"]
        if heads is not None and head not in heads:       # load_head takes folders too: only the offered ones
            raise ValueError(f"unknown head {str(head).replace(chr(92), '/').split('/')[-1]!r}: choose one of "
                             f"{', '.join(heads)}")
        audio = None
        if mic is not None:
            audio = prepare_audio(*mic)
            if vad:
                check_speech(audio)
        else:
            text = check_text(text)
    except ValueError as e:
        yield refused(e, "turn", first)
        return
    restarted = session is not None and session.checkpoint != folder and bool(session.history)
    session = session or ChatSession(checkpoint=folder, head=head, stream=SETTINGS["stream"])
    session.head, session.checkpoint, session.voice = head, folder, voice or None
    busy = "The avatar is answering…" + (" (new checkpoint: a new dialogue)" if restarted else "")
    accepted = False
    trace.mark("turn", spoken=audio is not None)
    try:
        for up in session.respond(text=None if audio is not None else text, audio=audio):
            if not accepted:                      # the turn is under way: show it, the reply's box, the dialogue
                accepted = True
                yield (gr.update(visible=True), _chat(session), keep, keep, keep, keep, keep,
                       "" if audio is None else keep, session, status(busy, "busy"), gr.update(visible=False))
            elif up.metrics is None:
                if up.segment:
                    trace.mark("yielded", segment=up.segment.name)
                yield (str(up.segment) if up.segment else keep, _chat(session), keep, keep, keep, keep, keep,
                       keep, session, keep, keep)
            else:
                yield (keep, _chat(session), _metrics_md(up.metrics), _stages(up.metrics), _plot(session.turns),
                       str(up.video) if up.video else None, _motion_files(up), keep, session, "", keep)
    except (ValueError, RuntimeError, OSError) as e:
        yield refused(e, "turn", not session.turns)


def _motion_files(up) -> list[str] | None:
    """The turn's motion downloads: the .npz, then its ARKit .json / .csv and the .glb."""
    return [str(p) for p in (up.motion, *up.exports) if p is not None] or None


def send_text(text, session, head, checkpoint, voice=None):
    """A typed turn (the Send button and Enter)."""
    yield from respond(text, None, session, head, checkpoint, voice)


def send_recording(mic, session, head, checkpoint, voice=None):
    """A recorded or uploaded turn."""
    if mic is None:                       # the recorder was cleared: nothing to answer
        yield (gr.update(),) * 8 + (session, "", gr.update())
        return
    yield from respond("", mic, session, head, checkpoint, voice)


def stop(session: ChatSession | None):
    if session is not None:
        session.cancel()


def clear(session: ChatSession | None):
    """New dialogue: an empty dialogue and panels, the idle avatar back."""
    if session is not None:
        session.reset()
    return ([], _metrics_md(None), [], None, session, "", gr.update(value=None, visible=False),
            gr.update(visible=True))


def pick_example(sample) -> str:
    return sample[0] if isinstance(sample, (list, tuple)) else str(sample)


def checkpoint_changed(name: str):
    """The voices of the chosen checkpoint (its dialogue restarts at the next turn)."""
    try:
        voices = voice_choices(str(checkpoints.resolve(name)))
    except ValueError as e:
        return gr.update(), status(note("checkpoint", e))
    return gr.update(choices=voices, value=voices[0]), ""


def idle_for_head(head: str):
    from ui.welcome import idle_clip

    try:
        return str(idle_clip(head))
    except (OSError, ValueError, RuntimeError) as e:
        note("idle avatar", e)
        return gr.update()


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
        return hf, turns, cuts, f"⚠️ hands-free microphone: {note('hands-free', e)}"
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
        yield (keep,) * 11
        return
    session = session or ChatSession(checkpoint=str(checkpoints.resolve(checkpoint)), head=head,
                                     stream=SETTINGS["stream"])
    hf.begin_reply(session)               # from here on the user's voice cancels this reply
    started, speech_s = None, 0.0
    try:
        for out in respond("", (SAMPLE_RATE, audio), session, head, checkpoint, voice, vad=False):
            if started is None and isinstance(out[0], str):
                started = time.monotonic()            # the first segment is on its way to the browser
            if isinstance(out[2], str) and session.turns:  # the final update: the metrics are in
                speech_s = session.turns[-1]["speech_s"]
            yield out[:7] + (keep,) + out[8:]
    finally:
        # the browser plays the reply for about its speech length after the first segment arrived
        left = (started + speech_s - time.monotonic()) if started is not None else 0.0
        hf.end_reply(session, playing_for=max(0.0, left + 1.0))


def handsfree_clear(hf: HandsFree | None):
    if hf is not None:
        hf.reset()


def _wire_handsfree(mic, status_md, new, outs, session, head, ckpt, voice) -> None:
    """The hands-free events (see the comment above handsfree_stream); none is an API endpoint."""
    hf, turns, cuts = gr.State(None), gr.State(0), gr.State(0)
    private = {"api_visibility": "private"}
    # concurrency_limit=None: a stream holds its queue slot for as long as the user talks, and costs a few ms
    # a chunk, so it must not keep other sessions' streams waiting. No time_limit: it counts processing time
    # (~4 % of the wall clock here), and a closed tab ends the stream anyway (Gradio waits 30 s for a chunk).
    mic.stream(handsfree_stream, [mic, hf, turns, cuts], [hf, turns, cuts, status_md], stream_every=HANDSFREE_EVERY,
               concurrency_limit=None, show_progress="hidden", **private)
    mic.start_recording(handsfree_start, [hf], [hf, status_md], show_progress="hidden", **private)
    mic.stop_recording(handsfree_stop, [hf, turns], [hf, turns, status_md], show_progress="hidden", **private)
    turns.change(handsfree_respond, [hf, session, head, ckpt, voice], outs, show_progress="hidden", **private)
    cuts.change(None, None, None, js=PAUSE_AVATAR_JS, **private)
    new.click(handsfree_clear, [hf], None, **private)


def build(head_choices: list[str], default_head: str, checkpoint: str, stream: StreamConfig | None = None) -> None:
    """Add the Conversation tab's components to the current Blocks. ``checkpoint``: the default checkpoint's
    folder (one of :func:`ui.checkpoints.choices`)."""
    from a2llm.model import read_manifest
    from ui import api
    from ui.welcome import example_questions, idle_clip, is_nano, welcome_line

    SETTINGS["stream"], SETTINGS["heads"] = stream or StreamConfig(), list(head_choices)
    manifest = read_manifest(checkpoint)
    names = list(checkpoints.choices())
    default_name = checkpoints.name_of(checkpoint)
    session = gr.State(None)
    gr.Markdown(welcome_line(manifest))
    examples = None
    if is_nano(manifest):
        examples = gr.Dataset(components=[gr.Textbox(visible=False)], samples=[[q] for q in example_questions()],
                              label="Example questions", samples_per_page=10)
    with gr.Row():
        with gr.Column(scale=3):
            idle = gr.Video(value=str(idle_clip(default_head)), label="Avatar (idle)", autoplay=True, loop=True,
                            height=384, elem_id="a2llm-idle", interactive=False, buttons=[])
            video = ReplyVideo(label="Avatar", streaming=True, autoplay=True, height=384, elem_id="a2llm-avatar",
                               visible=False)
            chat = gr.Chatbot(label="Dialogue", height=260)
            with gr.Row():
                text = gr.Textbox(label="Type a message", placeholder="How was the concert?", scale=4)
                send = gr.Button("Send", variant="primary", scale=1)
            message = gr.Markdown("", elem_id="a2llm-status", label="message")
            mic = gr.Audio(label="Or speak (the turn is sent when you stop recording)",
                           sources=["microphone", "upload"], type="numpy")
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
            metrics = gr.Markdown(_metrics_md(None), label="metrics")
            plot = gr.Image(label="This session's turns", type="filepath", height=220)
            stages = gr.Dataframe(headers=["stage", "ms"], label="Per-stage time of the last turn", interactive=False)
            # Choices only, nothing typed (Gradio refuses any other value); respond checks again, by name.
            with gr.Row():
                head = gr.Dropdown(head_choices, value=default_head, label="Head")
                voices = voice_choices(checkpoint)
                voice = gr.Dropdown(voices, value=voices[0], label="Voice", info="applies from the next turn")
                ckpt = gr.Dropdown(names, value=default_name, label="Checkpoint",
                                   info="another one starts a new dialogue")
            full = gr.File(label="The turn's video (.mp4)")
            motion = gr.File(label="The turn's motion (.npz; ARKit-52 .json / .csv; glTF .glb of the head)",
                             file_count="multiple")
    outs = [video, chat, metrics, stages, plot, full, motion, text, session, message, idle]
    quiet = {"show_progress": "hidden"}          # the message line says what is going on; no overlays
    gr.on([send.click, text.submit], send_text, [text, session, head, ckpt, voice], outs, api_name="send", **quiet)
    mic.stop_recording(send_recording, [mic, session, head, ckpt, voice], outs, api_name="send_recording", **quiet)
    mic.upload(send_recording, [mic, session, head, ckpt, voice], outs, api_visibility="private", **quiet)
    if examples is not None:
        examples.click(pick_example, [examples], [text], api_visibility="private", **quiet).then(
            send_text, [text, session, head, ckpt, voice], outs, api_visibility="private", **quiet)
    halt.click(stop, [session], None, queue=False, api_name="stop")
    new.click(clear, [session], [chat, metrics, stages, plot, session, message, video, idle], api_name="new_dialogue",
              **quiet)
    ckpt.change(checkpoint_changed, [ckpt], [voice, message], api_visibility="private", **quiet)
    head.change(idle_for_head, [head], [idle], api_visibility="private", **quiet)
    _wire_handsfree(hf_mic, hf_status, new, outs, session, head, ckpt, voice)
    api.build(default_head, checkpoint)
