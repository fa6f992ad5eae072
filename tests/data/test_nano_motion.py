"""Procedural motion: visemes close the lips on p/b/m, rest in pauses, and emotion comes from the text."""
import numpy as np
import pytest

from a2llm.data.nano.motion import EX, CueTime, Segment, Style, synthesize_motion
from a2llm.eval.metrics import mouth_opening
from a2llm.head import load_head

VOWEL = dict(jaw=0.9, spread=0.1)
P = dict(closure=1.0, jaw=0.05)


def segments():
    # 0.3 s pause, "pa pa", 0.5 s pause, "a", 0.3 s pause
    segs, t = [], 0.0
    for dur, silence, art in [(0.3, True, {}), (0.08, False, P), (0.18, False, VOWEL), (0.08, False, P),
                              (0.18, False, VOWEL), (0.5, True, {}), (0.2, False, VOWEL), (0.3, True, {})]:
        segs.append(Segment(t, t + dur, silence, **art))
        t += dur
    return segs, int(round(25 * t))


def opening_mm(motion):
    head = load_head("open")
    return 1000 * mouth_opening(head.vertices(motion, canonical=True), head)


def frames_of(seg, fps=25):
    return np.arange(int(np.ceil(seg.start * fps)), int(seg.end * fps))


def test_lips_close_on_bilabials_open_on_vowels_rest_in_pauses():
    segs, T = segments()
    m = synthesize_motion(segs, T, "neutral", rng=np.random.default_rng(0))
    o = opening_mm(m)
    vowel = segs[2]
    assert o[frames_of(vowel)].max() > 6.0                   # a short /a/ between two /p/: ~7 mm
    p_centre = int(segs[3].center * 25)
    assert o[p_centre] < 1.5 < o[frames_of(vowel)].max()
    long_pause = segs[5]
    inner = frames_of(Segment(long_pause.start + 0.1, long_pause.end - 0.1, True))
    assert o[inner].max() < 1.0
    assert o[:5].max() < 1.0 and o[-4:].max() < 1.0


@pytest.mark.parametrize("emotion,basis,sign", [("happy", "smile", 1), ("sad", "inner_brow_raise", 1),
                                                 ("surprised", "brow_raise", 1), ("contemptuous", "smirk_left", 1),
                                                 ("curious", "brow_raise", 1)])
def test_emotion_profile_drives_the_face(emotion, basis, sign):
    segs, T = segments()
    neutral = synthesize_motion(segs, T, "neutral", rng=np.random.default_rng(1))
    emo = synthesize_motion(segs, T, emotion, rng=np.random.default_rng(1))
    mid = T // 2
    assert sign * (emo[mid, EX[basis]] - neutral[mid, EX[basis]]) > 0.5
    # Same phones, same seed: the mouth articulation is identical, only the emotion channels differ.
    np.testing.assert_allclose(emo[:, EX["pucker"]], neutral[:, EX["pucker"]])


def test_cue_words_add_peaks_and_high_dynamic_scales():
    segs, T = segments()
    base = synthesize_motion(segs, T, "happy", rng=np.random.default_rng(2))
    laugh = synthesize_motion(segs, T, "happy", [CueTime("laugh", 0.3, 0.82)], rng=np.random.default_rng(2))
    k = int(0.55 * 25)
    assert laugh[k, EX["smile"]] > base[k, EX["smile"]] + 1.0
    strong = synthesize_motion(segs, T, "happy", style=Style(intensity=1.8), rng=np.random.default_rng(2))
    assert strong[T // 2, EX["smile"]] > 1.5 * base[T // 2, EX["smile"]]


def test_deterministic_and_blinks_present():
    segs, T = segments()
    a = synthesize_motion(segs, T, "sad", rng=np.random.default_rng(5), style=Style(blink_rate=3.0))
    b = synthesize_motion(segs, T, "sad", rng=np.random.default_rng(5), style=Style(blink_rate=3.0))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (T, 58)
    assert a[:, 56].max() > 0.9                                # at least one full blink
    with pytest.raises(ValueError, match="emotion"):
        synthesize_motion(segs, T, "angry")
