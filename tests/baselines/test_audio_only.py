"""The audio-only avatar: trains, animates on the speech's timeline, round-trips, rejects bad input."""
import numpy as np
import pytest

from a2llm.baselines.audio_only import AudioOnlyAvatar
from a2llm.data import load_flame_qa
from a2llm.motion.tokenizer import MotionTokenizer


def test_trained_baseline_animates_the_speech_and_round_trips(tiny_run, tiny_corpus, tiny_rvq, tmp_path):
    _, _, ckpt = tiny_run
    avatar = AudioOnlyAvatar.from_pretrained(ckpt / "baselines" / "audio-only")
    rvq = MotionTokenizer.from_pretrained(tiny_rvq)
    s = load_flame_qa(tiny_corpus, "test")[0]
    motion = avatar.animate(s.response_audio, s.sample_rate, rvq)
    assert motion.shape == (round(25 * len(s.response_audio) / s.sample_rate), 58)
    assert np.isfinite(motion).all()
    avatar.save_pretrained(tmp_path / "copy")
    again = AudioOnlyAvatar.from_pretrained(tmp_path / "copy").animate(s.response_audio, s.sample_rate, rvq)
    np.testing.assert_array_equal(motion, again)
    assert (ckpt / "baselines" / "audio-only" / "log.csv").exists()
    codes = avatar.animate(s.response_audio, s.sample_rate, rvq, motion_decode="codes")   # the paper's decoding
    assert codes.shape == motion.shape and np.isfinite(codes).all()


def test_bad_audio_is_refused(tiny_run, tiny_rvq):
    avatar = AudioOnlyAvatar.from_pretrained(tiny_run[2] / "baselines" / "audio-only")
    rvq = MotionTokenizer.from_pretrained(tiny_rvq)
    with pytest.raises(ValueError, match="16000 Hz"):
        avatar.animate(np.zeros(8000, np.float32), 8000, rvq)
    with pytest.raises(ValueError, match="at least 40 ms"):
        avatar.animate(np.zeros(100, np.float32), 16000, rvq)
    with pytest.raises(ValueError, match="motion_decode"):
        avatar.animate(np.zeros(16000, np.float32), 16000, rvq, motion_decode="mean")
