"""What a visitor sends is checked before the model sees it: visible text of at most 1,000 characters, recordings
that hold speech (silero-vad)."""
import numpy as np
import pytest

from ui.validate import MAX_TEXT_CHARS, check_speech, check_text

SR = 16000


@pytest.mark.parametrize("text, match", [
    (None, "Type a message"), ("", "Type a message"), ("   \n\t", "Type a message"),
    ("\u200b\u200b\u200b", "no visible characters"), ("\u2060\ufeff\u00ad", "no visible characters"),
    ("\x00\x07", "no visible characters"), ("x" * (MAX_TEXT_CHARS + 1), "1,001 characters long.*at most 1,000"),
    ("y" * 20000, "20,000 characters"),
])
def test_bad_messages_are_refused_with_a_clear_message(text, match):
    with pytest.raises(ValueError, match=match):
        check_text(text)


@pytest.mark.parametrize("text", ["How was the concert?", "  Hi!  ", "¿Qué tal?", "你好", "😀",
                                  "x" * MAX_TEXT_CHARS])
def test_good_messages_pass_stripped(text):
    assert check_text(text) == text.strip()


def test_speech_passes_and_noise_silence_and_a_tone_do_not():
    from a2llm.eval.bench import spoken

    speech = spoken("How was the concert? Tell me about it.")
    assert check_speech(speech) >= 0.5
    rng = np.random.default_rng(0)
    for name, clip in (("white noise", 0.3 * rng.standard_normal(3 * SR)),
                       ("silence", np.zeros(3 * SR)),
                       ("a hum", 0.3 * np.sin(2 * np.pi * 120 * np.arange(3 * SR) / SR))):
        with pytest.raises(ValueError, match="No speech found"):
            check_speech(clip.astype(np.float32))
    # a short question in a long recording of room noise is still a question
    padded = np.concatenate([0.003 * rng.standard_normal(4 * SR), speech, 0.003 * rng.standard_normal(4 * SR)])
    assert check_speech(padded.astype(np.float32)) >= 0.5
