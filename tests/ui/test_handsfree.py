"""Hands-free mode: real espeak-ng speech streamed in browser-sized chunks through silero-vad end-of-turn
detection, barge-in, and one spoken turn answered by the committed A²-LLM-nano through the tab's handlers."""
import numpy as np
import pytest
from scipy.signal import resample_poly

from ui.conversation import SAMPLE_RATE, ChatSession
from ui.handsfree import (FRAME, EndOfTurnDetector, HandsFree, SpeechStarted, StreamResampler, TurnEnded, VADConfig,
                          chunk_to_mono, load_vad_model)

espeak = pytest.importorskip("a2llm.data.espeak")
try:
    espeak.sample_rate()
except espeak.EspeakError as err:  # pragma: no cover - depends on the machine
    pytest.skip(f"libespeak-ng unavailable: {err}", allow_module_level=True)

NANO = "checkpoints/a2llm-nano"


def _speech(text: str):
    """espeak-ng speech at 16 kHz: (audio [N] float32, first speech second, last speech second)."""
    utt = espeak.synthesize(text)
    voiced = [p for p in utt.phonemes if p.symbol != espeak.SILENCE]
    g = np.gcd(utt.sample_rate, SAMPLE_RATE)
    audio = resample_poly(utt.audio.astype(np.float64), SAMPLE_RATE // g, utt.sample_rate // g).astype(np.float32)
    return audio, voiced[0].start, voiced[-1].end


@pytest.fixture(scope="module")
def question():
    return _speech("How was the concert last night?")


@pytest.fixture(scope="module")
def other_question():
    return _speech("Did you enjoy the party?")


@pytest.fixture(scope="module")
def vad():
    """One model for the module's sequential detectors (each reset() clears its recurrent state)."""
    return load_vad_model()


def _pad(*parts):
    """Silence (a float: seconds) and speech clips (arrays) in a row, at 16 kHz."""
    return np.concatenate([np.zeros(int(p * SAMPLE_RATE), np.float32) if isinstance(p, float) else p for p in parts])


def _as_browser(signal16: np.ndarray, rate: int, stereo_int16: bool) -> np.ndarray:
    """What gr.Audio(streaming=True) would deliver: the signal at ``rate``, int16 [N, 2] or float32 [N]."""
    x = signal16.astype(np.float64)
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        x = resample_poly(x, rate // g, SAMPLE_RATE // g)
    if stereo_int16:
        return (np.stack([x, 0.8 * x], axis=1) * 0.9 * 32767).astype(np.int16)
    return x.astype(np.float32)


def _stream(push, signal: np.ndarray, rate: int, chunk_s: float):
    """Push ``signal`` chunk by chunk; returns [(second at which the chunk's handler returned, event)]."""
    n = int(rate * chunk_s)
    out = []
    for i in range(0, len(signal), n):
        out += [((i + len(signal[i:i + n])) / rate, ev) for ev in push(rate, signal[i:i + n])]
    return out


# ------------------------------------------------------------------------------------------ audio in
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_chunked_resampling_equals_resample_poly_on_the_whole_signal(rate):
    x = np.random.default_rng(rate).standard_normal(rate) * 0.1
    r, rng, parts, i = StreamResampler(rate), np.random.default_rng(0), [], 0
    while i < len(x):
        n = int(rng.integers(1, rate // 4))
        parts.append(r.push(x[i:i + n]))
        i += n
    y = np.concatenate(parts)
    g = np.gcd(rate, SAMPLE_RATE)
    ref = resample_poly(x, SAMPLE_RATE // g, rate // g)
    assert len(ref) - 20 <= len(y) <= len(ref)              # all but the filter's look-ahead
    np.testing.assert_allclose(y, ref[:len(y)], atol=1e-6)


def test_chunks_of_any_format_become_mono_and_bad_ones_get_a_clear_message():
    tone = 0.5 * np.sin(np.linspace(0, 20, 4000))
    for chunk in ((tone * 32767).astype(np.int16), np.stack([tone, tone], 1), np.stack([tone, tone], 0),
                  (np.stack([tone, tone], 1) * 2 ** 31).astype(np.int32)):
        np.testing.assert_allclose(chunk_to_mono(48000, chunk), tone, atol=1e-4)
    assert chunk_to_mono(48000, np.zeros(0, np.int16)).shape == (0,)
    assert chunk_to_mono(48000, np.zeros((0, 2), np.int16)).shape == (0,)
    assert chunk_to_mono(16000, np.full(10, 3.0)).max() == 1.0                  # clipped, not rescaled
    for rate, chunk, match in [(48000, np.array(["a"]), "numbers"), (48000, np.full(4, np.nan), "NaN"),
                               (48000, np.zeros((2, 3, 4)), "shape"), (48000, np.zeros((50, 40)), "channels"),
                               (0, tone, "sample rate"), (48000.0, tone, "sample rate")]:
        with pytest.raises(ValueError, match=match):
            chunk_to_mono(rate, chunk)
    with pytest.raises(ValueError, match="end_threshold"):
        VADConfig(start_threshold=0.3, end_threshold=0.5)
    with pytest.raises(ValueError, match="max_turn_s"):
        VADConfig(max_turn_s=120)


# ------------------------------------------------------------------------------------------ turns
@pytest.mark.parametrize("rate,stereo_int16,chunk_s", [(48000, True, 0.25), (16000, False, 0.25),
                                                        (44100, True, 0.5)])
def test_a_spoken_question_ends_exactly_one_turn_soon_after_the_speech(vad, question, rate, stereo_int16, chunk_s):
    speech, s0, s1 = question
    lead = 1.5
    signal = _pad(lead, speech, 3.0)
    start, end = lead + s0, lead + s1                     # where the words are in the stream
    events = _stream(EndOfTurnDetector(model=vad).push, _as_browser(signal, rate, stereo_int16), rate, chunk_s)
    kinds = [type(ev) for _, ev in events]
    assert kinds == [SpeechStarted, TurnEnded]
    (_, started), (handed_at, turn) = events
    assert start - 0.1 <= started.onset <= start + 0.3 and started.time <= start + 0.6
    assert turn.reason == "silence"
    assert 0.5 <= turn.time - end <= 1.0                  # 700 ms of silence, give or take the model's frames
    assert handed_at - end <= 1.0 + chunk_s               # ... and the handler hands it over with that chunk
    t0, t1 = turn.start, turn.start + len(turn.audio) / SAMPLE_RATE
    assert t0 <= start - 0.1 and end <= t1 <= end + 0.5   # pre-roll before the first syllable, the last one kept
    assert turn.audio.dtype == np.float32 and turn.audio.ndim == 1
    if rate == SAMPLE_RATE and not stereo_int16:          # no resampling: the very samples that were streamed
        i = round(t0 * SAMPLE_RATE)
        np.testing.assert_array_equal(turn.audio, signal[i:i + len(turn.audio)])


def test_silence_hum_and_clicks_never_start_a_turn(vad):
    rng = np.random.default_rng(1)
    t = np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE
    quiet = (0.003 * rng.standard_normal(len(t)) + 0.01 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    quiet[3 * SAMPLE_RATE:3 * SAMPLE_RATE + 40] = 0.8                          # a click
    det = EndOfTurnDetector(model=vad)
    assert det.push(48000, np.zeros((0, 2), np.int16)) == []                   # an empty chunk (end of a stream)
    for signal in (np.zeros(6 * SAMPLE_RATE, np.float32), quiet):
        assert _stream(det.push, _as_browser(signal, 48000, True), 48000, 0.25) == []
        assert not det.speaking()
    assert det.flush() == []


def test_a_long_pause_splits_two_utterances_and_a_short_one_does_not(vad, question, other_question):
    a, b = question[0], other_question[0]
    det = EndOfTurnDetector(model=vad)
    two = [ev for _, ev in _stream(det.push, _pad(1.0, a, 2.0, b, 2.0), SAMPLE_RATE, 0.25)
           if isinstance(ev, TurnEnded)]
    assert len(two) == 2 and two[0].time < two[1].start
    one = [ev for _, ev in _stream(det.push, _pad(1.0, a, 0.3, b, 2.0), SAMPLE_RATE, 0.25)
           if isinstance(ev, TurnEnded)]
    assert len(one) == 1 and len(one[0].audio) >= len(a) + len(b)


def test_reset_forgets_a_half_spoken_turn(vad, question):
    speech = question[0]
    det = EndOfTurnDetector(model=vad)
    _stream(det.push, _pad(1.0, speech[: len(speech) // 2]), SAMPLE_RATE, 0.25)
    assert det.speaking() and det.position > 0
    det.reset()
    assert not det.speaking() and det.position == 0 and det.flush() == []
    events = _stream(det.push, _pad(0.5, speech, 2.0), SAMPLE_RATE, 0.25)
    (turn,) = [ev for _, ev in events if isinstance(ev, TurnEnded)]
    assert len(turn.audio) < len(speech) + 0.6 * SAMPLE_RATE          # nothing of the first half is in it


def test_a_turn_is_cut_at_max_length_and_flushed_when_the_stream_stops(vad, question):
    speech = question[0]
    det = EndOfTurnDetector(VADConfig(max_turn_s=1.0), model=vad)
    events = [ev for _, ev in _stream(det.push, _pad(0.5, speech), SAMPLE_RATE, 0.25) if isinstance(ev, TurnEnded)]
    assert events and events[0].reason == "max_length"
    assert SAMPLE_RATE <= len(events[0].audio) < SAMPLE_RATE + FRAME
    det = EndOfTurnDetector(model=vad)
    _stream(det.push, _pad(0.5, speech), SAMPLE_RATE, 0.25)               # the stream stops mid-speech
    (turn,) = det.flush()
    assert turn.reason == "flush" and not det.speaking()


# ------------------------------------------------------------------------------------------ barge-in
class FakeSession:
    def __init__(self):
        self.cancels = 0

    def cancel(self):
        self.cancels += 1


def test_speech_over_a_reply_cancels_it_and_silence_does_not(vad, question):
    speech = _as_browser(_pad(0.5, question[0], 1.5), 48000, True)
    quiet = _as_browser(_pad(2.0), 48000, True)
    hf, session = HandsFree(EndOfTurnDetector(model=vad)), FakeSession()

    def feed_all(signal):
        return [hf.feed(48000, signal[i:i + 12000]) for i in range(0, len(signal), 12000)]

    assert not any(f.barged_in for f in feed_all(speech)) and hf.barge_ins == 0     # nobody was replying
    assert len(hf.pending) == 1
    hf.begin_reply(session)
    assert hf.replying and "answering" in hf.status()
    feed_all(quiet)
    assert session.cancels == 0
    feeds = feed_all(speech)
    assert sum(f.barged_in for f in feeds) == 1 and session.cancels >= 1 and hf.barge_ins == 1
    hf.end_reply(session, playing_for=30.0)
    assert not hf.replying                                   # cut: its playback is not waited for
    # a reply whose generation is over but which is still playing is barged in too (without a cancel)
    hf.begin_reply(session)
    hf.end_reply(session, playing_for=30.0)
    cancels = session.cancels
    assert hf.replying and sum(f.barged_in for f in feed_all(speech)) == 1 and session.cancels == cancels
    turn = hf.take_turn()                                    # every waiting turn, in one clip
    assert hf.pending == [] and len(turn) > 3 * len(question[0]) and hf.take_turn() is None
    hf.reset()
    assert hf.turns == 0 and hf.barge_ins == 0 and not hf.detector.speaking()


def test_a_hands_free_turn_is_answered_by_nano_and_speaking_over_the_reply_cuts_it(vad, question, other_question):
    """Through the tab's own handlers, as Gradio calls them (no browser): chunks -> turn -> reply -> barge-in."""
    from ui.conversation_tab import handsfree_respond, handsfree_start, handsfree_stop, handsfree_stream

    hf, turns, cuts = HandsFree(EndOfTurnDetector(model=vad)), 0, 0
    hf, _ = handsfree_start(hf)

    def talk(signal16):
        nonlocal hf, turns, cuts
        chunks = _as_browser(signal16, 48000, True)
        for i in range(0, len(chunks), 12000):
            hf, turns, cuts, status = handsfree_stream((48000, chunks[i:i + 12000]), hf, turns, cuts)
        return status

    talk(_pad(1.0, question[0], 1.5))
    assert turns == 1 and cuts == 0
    session = ChatSession(checkpoint=NANO, size=64, max_new_tokens=200)
    outs = list(handsfree_respond(hf, session, "open", NANO))
    chat = outs[-1][1]
    assert [m["role"] for m in chat] == ["user", "assistant"] and chat[-1]["content"] not in ("", "…")
    assert session.turns[0]["speech_s"] > 0 and any(isinstance(o[0], str) for o in outs)   # streamed segments
    assert all(isinstance(o[7], dict) for o in outs)             # the text box is left alone

    talk(_pad(1.0, other_question[0], 1.5))                     # (over the first reply's playback, maybe)
    assert turns == 2
    reply = handsfree_respond(hf, session, "open", NANO)
    next(reply)                                                   # the reply is being generated...
    before = cuts
    talk(_pad(0.2, question[0][: SAMPLE_RATE // 2]))              # ...and the user talks over it
    assert cuts == before + 1
    list(reply)
    assert session.turns[-1]["cancelled"] and len(session.turns) == 2
    hf, turns, _ = handsfree_stop(hf, turns)                     # recording stops mid-word: that turn ends
    assert turns == 3 and len(hf.pending) == 1
    (noop,) = list(handsfree_respond(None, session, "open", NANO))  # no hands-free state yet: nothing to answer
    assert all(isinstance(o, dict) for o in noop) and len(session.history) == 4
