"""The tts stage with real espeak-ng synthesis (the CLI, and the ctypes library when it is installed)."""
from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.media import read_wav
from a2llm.data.builder.stages import TtsStage
from a2llm.data.builder.stages.tts import EspeakTTS, TtsConfig, voice_for

from .helpers import make_wav, seed

QUESTION = "How did the interview go this morning?"


def test_cli_backend_speaks():
    tts = EspeakTTS("cli")
    assert tts.name == "espeak-ng (cli)"
    audio, rate = tts.synthesize(QUESTION, voice="en-gb", rate=170, pitch=45)
    assert rate == 22050 and audio.dtype == np.float32
    assert 1.0 < audio.size / rate < 5.0 and np.abs(audio).max() > 0.05
    dash, _ = tts.synthesize("-v is not an option here", voice="en-us", rate=170, pitch=45)
    assert dash.size > rate // 2  # read as text, not as a flag


def test_cli_backend_reports_bad_voices():
    with pytest.raises(RuntimeError, match="espeak-ng failed \\(voice 'xx-nowhere'"):
        EspeakTTS("cli").synthesize(QUESTION, voice="xx-nowhere", rate=170, pitch=45)


@pytest.mark.skipif(importlib.util.find_spec("a2llm.data.espeak") is None, reason="a2llm.data.espeak not installed")
def test_library_backend_speaks_like_the_cli():
    lib = EspeakTTS("library")
    assert lib.name == "espeak-ng (a2llm.data.espeak)" and EspeakTTS("auto").name == lib.name
    audio, rate = lib.synthesize(QUESTION, voice="en-us", rate=175, pitch=50)
    cli, cli_rate = EspeakTTS("cli").synthesize(QUESTION, voice="en-us", rate=175, pitch=50)
    assert rate == cli_rate
    # Same engine, same speech; the CLI only appends trailing silence, so compare the voiced extents.
    extent = [np.flatnonzero(np.abs(x) > 1e-3)[[0, -1]] for x in (audio, cli)]
    assert np.abs(extent[0] - extent[1]).max() < 0.02 * rate


def test_voice_draw_is_deterministic_and_within_ranges():
    cfg = TtsConfig(voices=("en-us", "en-gb"), rate=(160, 165), pitch=(40, 41))
    draws = [voice_for(f"item-{i}", cfg) for i in range(40)]
    assert draws == [voice_for(f"item-{i}", cfg) for i in range(40)]
    assert {v for v, _, _ in draws} == {"en-us", "en-gb"}
    assert all(160 <= r <= 165 and 40 <= p <= 41 for _, r, p in draws)
    assert draws != [voice_for(f"item-{i}", dataclasses.replace(cfg, seed=1)) for i in range(40)]


def test_stage_writes_question_audio(tmp_path):
    make_wav(tmp_path / "raw" / "a.wav", seconds=0.2)
    make_wav(tmp_path / "raw" / "b.wav", seconds=0.2)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    a, b = (it.id for it in manifest.items)
    seed(manifest, "llm", {a: {"question": QUESTION}, b: {"question": "Why?"}})
    stage = TtsStage(TtsConfig(backend="cli"))
    assert run_stage(manifest, stage, progress=False).done == 2
    for rec in manifest.records(["tts"]):
        out = rec.output("tts")
        path = rec.path(out["audio"])
        assert path.name == "question.wav" and path.parent == manifest.stage_dir(rec.id, "tts")
        audio, rate = read_wav(path)
        assert rate == out["sample_rate"] == 22050
        assert out["duration_s"] == pytest.approx(audio.size / rate) and out["duration_s"] > 0.2
        assert (out["voice"], out["rate"], out["pitch"]) == voice_for(rec.id, stage.config)
        assert out["engine"] == "espeak-ng (cli)"
    durations = [r.output("tts")["duration_s"] for r in manifest.records(["tts"])]
    assert durations[0] > durations[1]  # the long question takes longer than "Why?"


def test_stage_config_is_checked():
    with pytest.raises(ValueError, match="tts.voices is empty"):
        TtsStage(TtsConfig(voices=()))
    with pytest.raises(ValueError, match="min <= max"):
        TtsStage(TtsConfig(rate=(200, 100)))
    with pytest.raises(ValueError, match="engine 'piper' is unknown"):
        TtsStage(TtsConfig(engine="piper"))
