"""Conversation logic: every kind of bad audio gets a clear message; a turn streams ≥ 1 s segments and saves files."""
from pathlib import Path

import numpy as np
import pytest

from renderer.video import probe_mp4
from ui.conversation import ChatSession, prepare_audio

SR = 16000


def _tone(seconds, sr=SR, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("sr,data,match", [
    (SR, np.zeros(0, np.float32), "empty"),
    (SR, _tone(0.05), "ms long"),
    (SR, np.zeros(SR, np.float32), "silent"),
    (SR, _tone(600), "at most"),
    (SR, np.array(["a", "b"]), "numbers"),
    (SR, np.full(SR, np.nan, np.float32), "NaN"),
    (0, _tone(1), "sample rate"),
    (SR, np.zeros((2, 3, 4)), "shape"),
])
def test_bad_audio_gets_a_clear_message(sr, data, match):
    with pytest.raises(ValueError, match=match):
        prepare_audio(sr, data)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
def test_rates_channels_and_formats_become_mono_16k_float(sr):
    mono = _tone(1.0, sr)
    for data in (mono, (mono * 32767).astype(np.int16), mono.astype(np.float64), np.stack([mono, mono], 1),
                 np.clip(mono * 10, -3, 3)):                        # clipped / out-of-range floats too
        out = prepare_audio(sr, data)
        assert out.dtype == np.float32 and out.ndim == 1 and abs(len(out) - SR) <= 2
        assert np.abs(out).max() <= 1.0 + 1e-6


def test_multichannel_int_audio_is_scaled_like_mono():
    mono = (_tone(1.0, amp=0.3) * 32767).astype(np.int16)
    np.testing.assert_allclose(prepare_audio(SR, np.stack([mono, mono], 1)), prepare_audio(SR, mono), atol=1e-6)
    quiet = np.random.default_rng(0).integers(-20, 20, (SR, 2)).astype(np.int16)     # ~ -64 dBFS noise
    with pytest.raises(ValueError, match="silent"):
        prepare_audio(SR, quiet)


def test_a_typed_turn_streams_segments_and_writes_video_and_motion(tiny_run):
    session = ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=70)
    updates = list(session.respond(text="How was the concert?"))
    last = updates[-1]
    segs = [u.segment for u in updates if u.segment]
    if last.metrics["speech_s"] > 0:
        frames = [probe_mp4(s)["frames"] for s in segs]
        schedule = [session.stream.frames(k) for k in range(len(segs))]
        assert frames[:-1] == schedule[:-1] and 1 <= frames[-1] <= schedule[-1]     # 10, 15, 25, ... frames
        assert [s.name for s in segs] == [f"seg_{k:05d}.mp4" for k in range(len(segs))]   # in order
        info = probe_mp4(last.video)
        assert info["frames"] == round(25 * last.metrics["speech_s"]) == sum(frames)
        assert last.video.name == "turn-01.mp4" and last.motion.name == "turn-01_motion.npz"
        with np.load(last.motion) as z:
            assert z["motion"].shape == (info["frames"], 58)
    assert [m["role"] for m in session.history] == ["user", "assistant"]
    assert session.turns and "ttfa_ms" in session.turns[0] and session.turns[0]["turn"] == 1
    assert last.heard is None                                    # a typed turn


@pytest.mark.parametrize("text, match", [("", "Type a message"), ("\u200b\u200b\u200b", "no visible characters"),
                                         (" \t\n", "Type a message"), ("x" * 20000, "at most 1,000")])
def test_refused_messages_change_nothing(tiny_run, text, match):
    session = ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=30)
    with pytest.raises(ValueError, match=match):
        list(session.respond(text=text))
    assert session.history == [] and session.turns == [] and session.turn_count == 0


def test_a_turn_the_context_cannot_hold_is_refused_and_the_next_one_works(tiny_run):
    """The engine refuses a turn that cannot fit its context budget even alone (here: room for a reply longer
    than the whole cache); the dialogue, the engine's and the session's, is left as it was."""
    import dataclasses

    session = ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=30)
    list(session.respond(text="How was the concert?"))
    engine = session.engine
    fits = engine.cfg
    engine.cfg = dataclasses.replace(fits, max_new_tokens=fits.max_context)
    history, engine_history = [dict(m) for m in session.history], list(engine.history)
    with pytest.raises(ValueError, match="context budget"):
        list(session.respond(text="Did you enjoy the party?"))
    assert session.history == history and engine.history == engine_history and session.turn_count == 1
    engine.cfg = fits
    last = list(session.respond(text="Did you enjoy the party?"))[-1]
    assert last.metrics is not None and len(session.history) == 4 and session.turn_count == 2
    if last.video is not None:
        assert last.video.name == "turn-02.mp4"


def test_four_concurrent_sessions_are_all_answered_and_share_no_state(tiny_run):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["How was the concert?", "Did you enjoy the party?", "What happened with the exam?",
                 "Who organised the dinner?"]
    sessions = [ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=30) for _ in questions]

    def run(pair):
        session, q = pair
        return list(session.respond(text=q))[-1]

    with ThreadPoolExecutor(4) as pool:
        finals = list(pool.map(run, zip(sessions, questions)))
    alone = [list(ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=30).respond(text=q))[-1]
             for q in questions]
    for s, q, f, a in zip(sessions, questions, finals, alone):
        assert f.metrics is not None and [m["content"] for m in s.history][0] == q
        assert len(s.history) == 2 and len(s.turns) == 1                 # only its own turn
        assert f.metrics["text"] == a.metrics["text"]                    # same answer as when alone
        assert f.metrics["speech_s"] == a.metrics["speech_s"]
    assert len({id(s.engine) for s in sessions}) == 4


NANO = str(Path(__file__).resolve().parents[2] / "checkpoints" / "a2llm-nano")


def _spoken_turn(session, question):
    pcm = []
    final = list(session.respond(text=question, on_audio=lambda x, sr: pcm.append(x)))[-1]
    return final, np.concatenate(pcm) if pcm else np.zeros(0, np.float32)


def _centroid(pcm):
    power = np.abs(np.fft.rfft(pcm[: len(pcm) // 640 * 640].reshape(-1, 640) * np.hanning(640), axis=1)) ** 2
    f = np.fft.rfftfreq(640, 1 / SR)
    loud = power.sum(1) > 0.01 * power.sum(1).max()
    return float(((power * f).sum(1) / power.sum(1).clip(1e-20))[loud].mean())


def test_a_voice_changes_the_spectrum_not_the_words_or_the_timing():
    """checkpoints/a2llm-nano, one typed question, greedy: the "lower" voice says the same answer with speech of
    exactly the default voice's length, but lower; switching voice mid-dialogue applies from the next turn."""
    question = "How was the concert?"
    default, pcm_default = _spoken_turn(ChatSession(checkpoint=NANO, size=64, max_new_tokens=200), question)
    session = ChatSession(checkpoint=NANO, size=64, max_new_tokens=200, voice="lower")
    lower, pcm_lower = _spoken_turn(session, question)
    assert lower.metrics["text"] == default.metrics["text"] and len(pcm_default) > SR // 2
    assert len(pcm_lower) == len(pcm_default) and lower.metrics["speech_s"] == default.metrics["speech_s"]
    with np.load(lower.motion) as z:                      # the motion still covers the speech exactly
        assert z["motion"].shape[0] == round(25 * lower.metrics["speech_s"])
    assert np.abs(pcm_lower - pcm_default).max() > 1e-2
    assert _centroid(pcm_lower) < 0.95 * _centroid(pcm_default)
    engine = session.engine
    assert engine.detok.voice == "lower"
    session.voice = "higher"                               # mid-dialogue: the next turn speaks in it
    second, pcm_higher = _spoken_turn(session, "Did you enjoy the party?")
    assert session.engine is engine and engine.detok.voice == "higher" and len(session.turns) == 2
    assert len(pcm_higher) == round(second.metrics["speech_s"] * SR)


def test_an_unknown_voice_is_refused_with_the_list():
    from ui.conversation import chat_text, voice_choices

    assert voice_choices(NANO) == ["default", "lower", "higher", "child"]
    session = ChatSession(checkpoint=NANO, voice="robot")
    with pytest.raises(ValueError, match=r"unknown voice 'robot'.*'default', 'lower', 'higher', 'child'"):
        list(session.respond(text="Hello."))
    assert session.history == []                           # refused before the turn started
    with pytest.raises(ValueError, match="unknown voice 'robot'"):
        chat_text("Hello.", NANO, "open", "robot")          # positional order: text, checkpoint, head, voice


def test_a_spoken_turn_shows_what_the_model_heard():
    """checkpoints/a2llm-nano: the dialogue shows a spoken turn's transcript (the engine's ASR subtask)."""
    from a2llm.eval.bench import spoken

    session = ChatSession(checkpoint=NANO, size=64, max_new_tokens=200)
    last = list(session.respond(audio=spoken("How was the concert?")))[-1]
    assert last.heard and last.heard.strip() and last.metrics["heard"] == last.heard
    assert session.history[0] == {"role": "user", "content": f"🎤 {last.heard}"}
