"""Conversation logic: every kind of bad audio gets a clear message; a turn streams ≥ 1 s segments and saves files."""
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


def test_a_typed_turn_streams_segments_and_writes_video_and_motion(tiny_run):
    session = ChatSession(checkpoint=str(tiny_run[2]), size=64, max_new_tokens=70)
    updates = list(session.respond(text="How was the concert?"))
    last = updates[-1]
    segs = [u.segment for u in updates if u.segment]
    if last.metrics["speech_s"] > 0:
        assert segs and all(probe_mp4(s)["seconds"] >= 1.0 for s in segs)
        info = probe_mp4(last.video)
        assert info["frames"] == round(25 * last.metrics["speech_s"])
        with np.load(last.motion) as z:
            assert z["motion"].shape == (info["frames"], 58)
    assert [m["role"] for m in session.history] == ["user", "assistant"]
    assert session.turns and "ttfa_ms" in session.turns[0]


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
