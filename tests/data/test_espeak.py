"""Tests of the libespeak-ng binding, against the real library (no mocks)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from a2llm.data import espeak
from a2llm.data.phones import articulation, collapse, frame_tokens, phone_class, phone_name

try:
    espeak.sample_rate()
except espeak.EspeakError as err:  # pragma: no cover - depends on the machine
    pytest.skip(f"libespeak-ng unavailable: {err}", allow_module_level=True)

PANGRAM = "The quick brown fox jumps over the lazy dog."


def _rms(audio: np.ndarray, rate: int, start: float, end: float) -> float:
    seg = audio[max(0, int(start * rate)) : max(0, int(end * rate))]
    return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0


def _median_f0(audio: np.ndarray, rate: int) -> float:
    """Median autocorrelation f0 (Hz) over loud 40 ms windows; 60..400 Hz search range."""
    win, hop = int(0.04 * rate), int(0.02 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    f0s = []
    for s in range(0, audio.size - win, hop):
        x = audio[s : s + win].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.03:
            continue
        x = x - x.mean()
        r = np.correlate(x, x, "full")[win - 1 :]
        lag = lo + int(np.argmax(r[lo:hi]))
        if r[lag] > 0.3 * r[0]:
            f0s.append(rate / lag)
    assert f0s, "no voiced frames found"
    return float(np.median(f0s))


def test_audio_rate_type_and_duration():
    utt = espeak.synthesize(PANGRAM)
    assert utt.sample_rate == 22050 == espeak.sample_rate()
    assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1
    assert np.abs(utt.audio).max() <= 1.0
    assert 1.5 < utt.duration < 5.0  # 9 words at 175 wpm ≈ 3 s
    assert np.sqrt(np.mean(utt.audio**2)) > 0.02  # not silent
    assert utt.text == PANGRAM and utt.voice == "en-us"


def test_phones_are_ordered_and_tile_the_audio():
    utt = espeak.synthesize("Hello there. How are you today?")
    ph = utt.phonemes
    assert len(ph) > 15
    assert ph[0].start == 0.0
    assert ph[-1].end == utt.duration  # exactly, not approximately
    assert all(a.end == b.start for a, b in zip(ph, ph[1:]))
    assert all(p.duration > 0 for p in ph)
    assert sum(p.duration for p in ph) == pytest.approx(utt.duration, abs=1e-9)
    # consecutive pauses are merged, and the sentence break is a pause
    assert not any(a.symbol == b.symbol == espeak.SILENCE for a, b in zip(ph, ph[1:]))
    assert sum(p.symbol == espeak.SILENCE for p in ph[1:-1]) >= 1


def test_phone_sequence_of_papa_mama():
    utt = espeak.synthesize("papa mama")
    names = [phone_name(p.symbol) for p in utt.phonemes if p.symbol != espeak.SILENCE]
    assert names == ["p", "A:", "p", "@", "m", "A:", "m", "@"]


def test_bilabials_coincide_with_low_energy():
    """Lip closure (p b m) must fall where the audio is quiet; shifted timings must fit worse."""
    for voice in ("en-us", "en-gb"):
        utt = espeak.synthesize("Bob might buy my maple bib. A big map, a bumpy ramp.", voice=voice)
        audio, rate = utt.audio, utt.sample_rate
        vowels = [p for p in utt.phonemes if articulation(p.symbol).vowel]
        labials = [p for p in utt.phonemes if articulation(p.symbol).closure == 1.0]
        assert len(labials) >= 12
        vowel_level = np.mean([_rms(audio, rate, p.start, p.end) for p in vowels])

        def closure_level(shift: float) -> float:
            # the closed part of a bilabial: its first 60% (a stop's release comes at the end)
            return np.mean([_rms(audio, rate, p.start + shift, p.start + shift + 0.6 * p.duration) for p in labials])

        at_truth = closure_level(0.0) / vowel_level
        assert at_truth < 0.4, f"{voice}: bilabials are not quiet ({at_truth:.2f} of the vowel level)"
        for shift in (-0.06, -0.03, 0.03, 0.06):
            assert closure_level(shift) / vowel_level > at_truth, f"{voice}: timings shifted by {shift}s fit better"


def test_stop_closure_belongs_to_the_stop():
    # espeak-ng emits a stop's event at its release; the ~40 ms closure silence before it is moved into it.
    utt = espeak.synthesize("a tap")
    stops = [ph for ph in utt.phonemes if phone_name(ph.symbol) in ("t", "p")]
    assert len(stops) == 2
    for stop in stops:
        head = utt.audio[int(stop.start * utt.sample_rate) : int((stop.start + 0.02) * utt.sample_rate)]
        assert np.all(head == 0.0), f"{stop.symbol} does not start with its closure silence"
        assert stop.duration > 0.04


def test_words_match_the_text():
    text = "  Hello, wonderful café world!"
    utt = espeak.synthesize(text)
    assert [utt.word_text(w) for w in utt.words] == ["Hello", "wonderful", "café", "world"]
    starts = [w.start for w in utt.words]
    assert starts == sorted(starts) and starts[-1] < utt.duration
    # a word starts at one of the phone boundaries' neighbourhood (the stop closure may move it earlier)
    boundaries = np.array([p.start for p in utt.phonemes])
    assert all(np.min(np.abs(boundaries - s)) < 0.06 for s in starts)


def test_rate_changes_duration():
    slow = espeak.synthesize(PANGRAM, rate=120).duration
    fast = espeak.synthesize(PANGRAM, rate=250).duration
    assert slow > 1.5 * fast


def test_pitch_changes_f0():
    low = espeak.synthesize(PANGRAM, pitch=10)
    high = espeak.synthesize(PANGRAM, pitch=90)
    assert _median_f0(high.audio, high.sample_rate) > 1.3 * _median_f0(low.audio, low.sample_rate)


def test_list_voices_gives_several_usable_english_voices():
    voices = espeak.list_voices("en")
    assert {"en-us", "en-gb"} <= set(voices) and len(voices) >= 5
    for voice in voices:
        utt = espeak.synthesize("Good morning.", voice=voice)
        assert utt.duration > 0.3 and any(p.symbol != espeak.SILENCE for p in utt.phonemes), voice


def test_variants_work_and_change_the_voice():
    variants = espeak.list_variants()
    assert {"f2", "f3", "m3", "whisper"} <= set(variants)
    base = espeak.synthesize(PANGRAM, voice="en-us")
    female = espeak.synthesize(PANGRAM, voice="en-us+f3")
    assert _median_f0(female.audio, female.sample_rate) > 1.5 * _median_f0(base.audio, base.sample_rate)
    for voice in ("en+m3", "en-gb+f2", "en-gb-x-rp+f4"):
        assert espeak.synthesize("Good morning.", voice=voice).duration > 0.3


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown espeak-ng voice variant"):
        espeak.synthesize("hi", voice="en-us+nosuchvariant")
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        espeak.synthesize("hi", voice="xx-nowhere")
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        espeak.synthesize("hi", voice="f3")  # a bare variant: espeak-ng itself would crash on the next call
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        espeak.synthesize("hi", voice="us-mbrola-1")  # mbrola voices are not supported
    assert espeak.synthesize("still fine").duration > 0.3
    with pytest.raises(ValueError, match="non-empty"):
        espeak.synthesize("   ")
    with pytest.raises(ValueError, match="rate=500"):
        espeak.synthesize("hi", rate=500)
    with pytest.raises(ValueError, match="pitch=-1"):
        espeak.synthesize("hi", pitch=-1)


def _same_timing(a: espeak.Utterance, b: espeak.Utterance) -> None:
    """Same phones at the same times, to within a pitch period.

    espeak-ng's wave generator keeps state between calls (pitch flutter, breath noise, wave phase), so
    samples differ, phone boundaries (which wait for the end of a glottal cycle) move by up to one pitch
    period (~10 ms), and the final pause varies by tens of ms.
    """
    assert [p.symbol for p in a.phonemes] == [p.symbol for p in b.phonemes]
    np.testing.assert_allclose([p.start for p in a.phonemes], [p.start for p in b.phonemes], atol=0.015)
    assert abs(a.duration - b.duration) < 0.06


def test_repeated_calls_are_stable():
    first = espeak.synthesize(PANGRAM, voice="en-gb")
    for i in range(100):
        utt = espeak.synthesize(f"Sentence number {i}, said quickly.", voice=("en-us", "en+m3")[i % 2], rate=150 + i)
        assert utt.duration > 1.0 and utt.phonemes[-1].end == utt.duration
    _same_timing(first, espeak.synthesize(PANGRAM, voice="en-gb"))


def test_concurrent_threads_get_their_own_results():
    texts = [f"Thread {i} says {word}." for i, word in enumerate(["apple", "banana", "cherry", "damson"])]
    serial = [espeak.synthesize(t) for t in texts]
    results: dict[int, espeak.Utterance] = {}

    def work(i: int) -> None:
        results[i] = espeak.synthesize(texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i, utt in enumerate(serial):
        assert results[i].text == texts[i]
        _same_timing(results[i], utt)


def test_frame_tokens_of_a_real_utterance():
    utt = espeak.synthesize("papa mama")
    tokens = frame_tokens(utt.phonemes)
    assert tokens.shape == (round(25 * utt.duration),)
    assert collapse(tokens) == [phone_class(s) for s in ("p", "A:", "p", "@", "m", "A:", "m", "a#")]
