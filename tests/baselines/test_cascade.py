"""The cascaded baseline: phrase cutting, the two modes' data flow with known stages, nano stages end to end."""
import numpy as np
import pytest

from a2llm.baselines.cascade import Cascade, Speech, phrases

SR = 16000
STEP = SR // 25


def test_phrases_cut_at_punctuation_and_word_count_without_splitting_words():
    pieces = ["Hel", "lo", " there", ", my", " friend", " how", " are", " you", " to", "day", " fine"]
    assert list(phrases(iter(pieces), phrase_words=3)) == ["Hello there,", "my friend how", "are you today",
                                                           "fine"]
    assert list(phrases(iter(["Yes!", " I", " can."]), phrase_words=6)) == ["Yes!", "I can."]
    assert list(phrases(iter([]))) == []


class _ASR:
    def transcribe(self, audio, sample_rate):
        return f"{len(audio)} samples"


class _LLM:
    def stream(self, text):
        yield from ["one", " two", " three.", " four", " five"]


class _TTS:
    """Each word of a phrase: 3 tokens, then 0.2 s of speech whose samples count up across the reply."""

    sample_rate = SR

    def start(self):
        self.n, self.phrases = 0, []

    def speak(self, text):
        self.phrases.append(text)
        for _ in text.split():
            yield Speech(np.zeros(0, np.float32), SR, tokens=3)
            pcm = np.arange(self.n, self.n + SR // 5, dtype=np.float32)
            self.n += len(pcm)
            yield Speech(pcm, SR)

    def finish(self):
        pcm = np.arange(self.n, self.n + 100, dtype=np.float32)     # a tail shorter than one frame
        self.n += 100
        yield Speech(pcm, SR)


class _Animator:
    """Frame k of a clip = the clip's first sample index + k * 640 (so frames say which speech they animate)."""

    def __init__(self):
        self.calls = []

    def animate(self, audio, sample_rate):
        self.calls.append(len(audio))
        frames = int(round(25 * len(audio) / sample_rate))
        return np.repeat((audio[0] + STEP * np.arange(frames, dtype=np.float32))[:, None], 58, 1)


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_both_modes_give_the_same_timeline(mode):
    anim, tts = _Animator(), _TTS()
    r = Cascade(_ASR(), _LLM(), tts, anim, phrase_words=2).run(np.zeros(8000, np.float32), SR, mode)
    assert r.transcript == "8000 samples"
    assert r.text == "one two three. four five"
    assert len(r.speech) == 5 * SR // 5 + 100
    np.testing.assert_array_equal(r.speech, np.arange(len(r.speech)))
    frames = round(25 * len(r.speech) / SR)
    assert r.motion.shape == (frames, 58)
    # every frame animates the speech at its own time, whichever way it was cut
    np.testing.assert_allclose(r.motion[:, 0], STEP * np.arange(frames))
    assert r.ttft_ms <= r.ttfa_ms <= r.wall_ms
    assert set(r.stages) == {"asr", "llm", "tts", "detokenizer", "animation"}
    if mode == "batch":
        assert tts.phrases == ["one two three. four five"] and len(anim.calls) == 1
    else:
        assert tts.phrases == ["one two", "three.", "four five"]
        assert len(anim.calls) == 5                          # one call per new 0.2 s of speech
        assert max(anim.calls) <= SR // 5 + int(0.4 * SR)    # new speech + at most 0.4 s of left context


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        Cascade(_ASR(), _LLM(), _TTS(), _Animator()).run(np.zeros(8000, np.float32), SR, "parallel")


@pytest.fixture(scope="module")
def nano_cascade():
    return Cascade.nano("checkpoints/a2llm-nano")


def test_nano_cascade_answers_a_spoken_question(nano_cascade):
    from a2llm.eval.bench import spoken

    clip = spoken("How was the concert?")
    for mode in ("batch", "streaming"):
        r = nano_cascade.run(clip, SR, mode)
        assert r.transcript and r.text
        assert r.speech_s > 0.5 and np.isfinite(r.speech).all()
        assert r.motion.shape == (round(25 * r.speech_s), 58) and np.isfinite(r.motion).all()
        assert 0 < r.ttft_ms <= r.ttfa_ms <= r.wall_ms
        assert nano_cascade.llm.decoded > len(r.text.split())     # interleaved: more steps than words
