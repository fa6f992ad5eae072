"""The audio and asr stages, with a tiny randomly-initialised Whisper loaded through the real adapter."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.media import read_wav
from a2llm.data.builder.runner import ItemError
from a2llm.data.builder.stages import AsrStage, AudioStage
from a2llm.data.builder.stages.asr import WhisperASR

from .helpers import make_wav, tiny_whisper


@pytest.fixture(scope="module")
def whisper_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper")
    return tiny_whisper(root / "random"), tiny_whisper(root / "constant", constant_token="a")


def test_avg_logprob_matches_a_teacher_forced_pass(whisper_dirs):
    asr = WhisperASR.from_pretrained(str(whisper_dirs[0]), device="cpu", max_new_tokens=12)
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    got = asr.transcribe(audio, 16000)
    assert isinstance(got.text, str) and 1 <= got.num_tokens <= 12

    # Recompute independently: generate, then score the sequence with one forward pass.
    feats = asr.processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    out = asr.model.generate(feats, language="en", max_new_tokens=12, return_dict_in_generate=True,
                             output_scores=True)
    seq = out.sequences
    with torch.no_grad():
        logits = asr.model(input_features=feats, decoder_input_ids=seq[:, :-1]).logits[0]
    logp = torch.log_softmax(logits, -1)
    prompt = seq.shape[1] - got.num_tokens  # no end-of-text in 12 random steps: all of them count
    expected = np.mean([logp[prompt - 1 + t, seq[0, prompt + t]].item() for t in range(got.num_tokens)])
    assert got.avg_logprob == pytest.approx(expected, abs=1e-4)


def test_deterministic_transcript_and_confidence(whisper_dirs):
    asr = WhisperASR.from_pretrained(str(whisper_dirs[1]), device="cpu", max_new_tokens=8)
    got = asr.transcribe(np.zeros(8000, np.float32), 16000)
    assert got.text == "a" * 8 and got.num_tokens == 8
    assert -0.05 < got.avg_logprob <= 0.0  # the constant model is sure of itself


def test_refuses_wrong_rate_and_overlong_audio(whisper_dirs):
    asr = WhisperASR.from_pretrained(str(whisper_dirs[1]), device="cpu", max_new_tokens=4)
    with pytest.raises(ValueError, match="16000 Hz"):
        asr.transcribe(np.zeros(100, np.float32), 8000)
    with pytest.raises(ItemError, match="Whisper transcribes windows of 30 s"):
        asr.transcribe(np.zeros(16000 * 31, np.float32), 16000)


def test_english_only_checkpoints_take_no_language(whisper_dirs):
    asr = WhisperASR.from_pretrained(str(whisper_dirs[1]), device="cpu", language=None, max_new_tokens=3)
    gc = asr.model.generation_config  # make it look like a *.en checkpoint: no language tokens
    gc.is_multilingual = False
    del gc.lang_to_id, gc.task_to_id
    with pytest.raises(ValueError, match="English-only"):
        WhisperASR(asr.model, asr.processor, language="en")
    english = WhisperASR(asr.model, asr.processor, language=None, max_new_tokens=3)
    assert english.transcribe(np.zeros(1600, np.float32), 16000).text == "aaa"


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(OSError, match="could not load the ASR model"):
        WhisperASR.from_pretrained(str(tmp_path / "no-such-model"), device="cpu")


def test_audio_then_asr_stage_over_a_manifest(whisper_dirs, tmp_path):
    make_wav(tmp_path / "raw" / "a.wav", seconds=0.5, rate=22050)  # not 16 kHz: the audio stage resamples
    make_wav(tmp_path / "raw" / "b.flac", seconds=0.7, rate=16000)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    assert run_stage(manifest, AudioStage(), progress=False).done == 2
    rec = manifest.records(["audio"])[0]
    audio, rate = read_wav(rec.path(rec.output("audio")["audio"]))
    assert rate == 16000 and audio.size == 8000 and rec.output("audio")["duration_s"] == pytest.approx(0.5)
    assert -20 < rec.output("audio")["rms_dbfs"] < -5  # a 0.3-amplitude tone is about -13 dBFS

    asr = WhisperASR.from_pretrained(str(whisper_dirs[1]), device="cpu", max_new_tokens=5)
    summary = run_stage(manifest, AsrStage(model=asr), progress=False)
    assert summary.done == 2
    out = manifest.records(["asr"])[1].output("asr")
    assert out["text"] == "aaaaa" and out["num_words"] == 1 and out["model"] == str(whisper_dirs[1])
