"""Tests of the phone inventory, articulation table, 25 Hz frame tokens, collapse and phone error rate."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from a2llm.data import phones
from a2llm.data.phones import (
    ALIASES,
    ARTICULATION,
    FALLBACK,
    PHONES,
    SILENCE_ID,
    articulation,
    collapse,
    edit_distance,
    frame_tokens,
    phone_class,
    phone_error_rate,
    phone_name,
)

PANGRAMS = (
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "Sphinx of black quartz, judge my vow!",
    "How vexingly quick daft zebras jump.",
    "The five boxing wizards jump quickly; jackdaws love my big sphinx of quartz.",
    "Measure the pleasure of azure vision in the beige garage, with thought and rhythm.",
    "Hmm, I wonder: are you really sure? Oh yes, I'm pretty sure! Our hour, your tour, their chair, near here.",
    "The noisy boy enjoys his toy; good books should look cool at noon, and a nurse learns early."
)


def test_inventory_is_consistent():
    assert PHONES[SILENCE_ID] == "_"
    assert len(set(PHONES)) == len(PHONES)
    assert set(ARTICULATION) == set(PHONES)
    assert set(ALIASES.values()) <= set(PHONES) and not set(ALIASES) & set(PHONES)
    assert all(a.glide_to in PHONES for a in ARTICULATION.values() if a.glide_to is not None)
    assert FALLBACK in PHONES


def test_phone_class_maps_variants_stress_and_pauses():
    assert phone_class("_") == phone_class("_:") == phone_class("_!") == SILENCE_ID
    assert phone_class("'aI") == phone_class(",aI") == phone_class("aI") == PHONES.index("aI")
    assert phone_class("I2") == phone_class("I") != phone_class("i:")
    assert phone_name("t#") == phone_name("t2") == "t"
    assert phone_name("a#") == phone_name("@2") == "@"
    assert phone_name("i@3") == "i@" and phone_name("o@") == "O@" and phone_name(";") == "j"
    # ':' is part of espeak's mnemonics (i: vs i) and is kept; it is only dropped where no long form exists
    assert phone_name("u:") == "u:" and phone_name("s:") == "s"
    # diphthongs have their own classes
    assert len({phone_class(s) for s in ("eI", "aI", "OI", "aU", "oU", "a", "I", "U")}) == 8


def test_unknown_symbol_falls_back_with_one_warning():
    with pytest.warns(UserWarning, match="'Yq~'"):
        assert phone_name("Yq~") == FALLBACK
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert phone_name("Yq~") == FALLBACK  # warned once only
    with pytest.warns(UserWarning, match="'dZ;'"):
        assert phone_name("dZ;") == "dZ"  # longest prefix with a class
    with pytest.raises(TypeError):
        phone_class(3)


def test_articulation_follows_phonetics():
    jaw = {s: articulation(s).jaw for s in ("A:", "E", "i:", "p")}
    assert jaw["A:"] > jaw["E"] > jaw["i:"] > jaw["p"]
    assert all(articulation(s).closure == 1.0 for s in ("p", "b", "m"))
    assert all(articulation(s).closure == 0.0 for s in ("f", "n", "A:", "_"))
    assert articulation("f").labiodental == articulation("v").labiodental == 1.0
    assert articulation("T").tongue_visible == articulation("D").tongue_visible == 1.0
    assert articulation("u:").round > 0.8 and articulation("w").round > 0.8
    assert 0.0 < articulation("S").round < articulation("u:").round
    assert articulation("i:").spread > 0.5 and articulation("i:").round == 0.0
    assert articulation("b").voiced and not articulation("p").voiced
    assert all(articulation(s).vowel for s in ("@", "aI", "u:")) and not articulation("m").vowel
    assert articulation("aI").glide_to == "I" and articulation("p").glide_to is None
    assert {articulation(s).viseme for s in ("p", "b", "m")} == {1}


def test_frame_tokens_centre_rule():
    # frame f covers [0.04 f, 0.04 (f+1)); centres 0.02, 0.06, 0.10, ...
    ph = [("_", 0.0, 0.05), ("p", 0.05, 0.13), ("A:", 0.13, 0.31)]
    _, p, a = (phone_class(s) for s in ("_", "p", "A:"))
    np.testing.assert_array_equal(frame_tokens(ph), [0, p, p, a, a, a, a, a])  # round(25 * 0.31) = 8 frames
    assert frame_tokens(ph).dtype == np.int64
    # a phone that covers no frame centre leaves no token, even though it overlaps a frame
    short = [("_", 0.0, 0.065), ("t", 0.065, 0.079), ("i:", 0.079, 0.2)]
    np.testing.assert_array_equal(frame_tokens(short), [0, 0, phone_class("i:"), phone_class("i:"), phone_class("i:")])
    # a boundary exactly at a centre belongs to the phone that starts there ([start, end))
    edge = [("m", 0.0, 0.06), ("a", 0.06, 0.12)]
    np.testing.assert_array_equal(frame_tokens(edge), [phone_class("m"), phone_class("a"), phone_class("a")])


def test_frame_tokens_length_gaps_and_padding():
    ph = [("s", 0.0, 0.08), ("z", 0.16, 0.24)]  # a gap 0.08..0.16 is silence
    s, z = phone_class("s"), phone_class("z")
    np.testing.assert_array_equal(frame_tokens(ph), [s, s, 0, 0, z, z])
    np.testing.assert_array_equal(frame_tokens(ph, num_frames=8), [s, s, 0, 0, z, z, 0, 0])
    np.testing.assert_array_equal(frame_tokens(ph, num_frames=3), [s, s, 0])
    np.testing.assert_array_equal(frame_tokens(ph, fps=50), [s, s, s, s, 0, 0, 0, 0, z, z, z, z])
    assert frame_tokens([]).shape == (0,)
    with pytest.raises(ValueError, match="before phone 0 ends"):
        frame_tokens([("a", 0.0, 0.2), ("b", 0.1, 0.3)])
    with pytest.raises(ValueError, match="ends before it starts"):
        frame_tokens([("a", 0.2, 0.1)])


def test_collapse_known_answers():
    assert collapse([0, 0, 5, 5, 0, 5, 7, 7, 0]) == [5, 5, 7]
    assert collapse(np.array([3, 3, 3])) == [3]
    assert collapse([0, 0]) == [] and collapse([]) == []


def test_edit_distance_known_answers():
    kitten, sitting = [ord(c) for c in "kitten"], [ord(c) for c in "sitting"]
    assert edit_distance(kitten, sitting) == 3
    assert edit_distance([], [1, 2, 3]) == 3 and edit_distance([1, 2], []) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3, 4], [2, 3, 4, 1]) == 2  # one deletion + one insertion


def test_phone_error_rate_known_answers():
    ref = [0, 1, 1, 2, 2, 2, 0, 3, 4, 0]  # phones 1 2 3 4
    assert phone_error_rate(ref, ref) == 0.0
    assert phone_error_rate([1, 1, 2, 3, 3, 4], ref) == 0.0  # timing differences do not count
    assert phone_error_rate([1, 3, 4, 5], ref) == 0.5  # deletion of 2, insertion of 5
    assert phone_error_rate([9, 9, 0, 8], ref) == 1.0  # 2 substitutions + 2 deletions
    assert phone_error_rate([1, 2, 3, 4, 5, 6, 7, 8, 9], ref) == 5 / 4  # may exceed 1
    with pytest.raises(ValueError, match="no phones"):
        phone_error_rate([1, 2], [0, 0])


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
def test_every_symbol_of_real_speech_has_a_class(voice):
    espeak = pytest.importorskip("a2llm.data.espeak")
    try:
        espeak.sample_rate()
    except espeak.EspeakError as err:  # pragma: no cover - depends on the machine
        pytest.skip(f"libespeak-ng unavailable: {err}")
    seen = set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn
        for text in PANGRAMS:
            for ph in espeak.synthesize(text, voice=voice).phonemes:
                seen.add(phone_name(ph.symbol))
    # the pangrams cover most of the inventory, including th, zh, the diphthongs and r-linked vowels
    assert len(seen) >= 40, sorted(set(PHONES) - seen)
    assert {"T", "D", "Z", "dZ", "tS", "aI", "aU", "OI", "eI", "oU"} <= seen
    assert phones.PHONES[SILENCE_ID] in seen
