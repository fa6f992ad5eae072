"""The Compare tab's built-in systems: one sentence, every nano system, the same timeline."""
import numpy as np
import pytest

from a2llm.motion.io import load_motion
from ui.nano_systems import animate_with_nano_systems, spoken_sample, system_folders

CKPT = "checkpoints/a2llm-nano"


def test_spoken_sample_has_speech_tokens_and_ground_truth_on_one_timeline():
    s = spoken_sample("Haha, that is wonderful news!", "happy")
    frames = round(25 * len(s.response_audio) / 16000)
    assert s.motion.shape == (frames, 58) and len(s.audio_tokens) == frames and frames > 25
    # a happy sentence with a cue word smiles more than the same sentence said neutrally
    neutral = spoken_sample("Haha, that is wonderful news!", "neutral")
    assert np.abs(s.motion).mean() != pytest.approx(np.abs(neutral.motion).mean())


@pytest.mark.parametrize("text, emotion, match", [("  ", "happy", "sentence"), ("x" * 400, "happy", "under"),
                                                  ("Hello.", "angry", "emotion")])
def test_bad_requests_are_refused(text, emotion, match):
    with pytest.raises(ValueError, match=match):
        spoken_sample(text, emotion)


def test_every_system_animates_the_same_speech():
    assert {"A²-LLM-nano", "stage1-connector", "stage2-joint", "adapter-only"} <= set(system_folders(CKPT))
    s = spoken_sample("Oh no, that is so sad.", "sad")
    files = animate_with_nano_systems(s, CKPT)
    assert list(files)[0] == "ground truth" and "audio-only" in files
    for name, path in files.items():
        clip = load_motion(path)
        assert clip.motion.shape == s.motion.shape, name
        assert np.isfinite(clip.motion).all() and clip.audio is not None and len(clip.audio) == len(s.response_audio)
    ours, gt = load_motion(files["A²-LLM-nano"]).motion, s.motion
    assert np.corrcoef(ours[:, 50], gt[:, 50])[0, 1] > 0.3      # the jaw follows the speech
