"""The whole pipeline and the CLI: init -> every stage -> filter -> export, on a real video and a wav.

Model stages get stand-in models here (their real adapters are tested in their own files); audio extraction,
espeak-ng TTS, the filter, the motion files and the export are real.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.__main__ import main
from a2llm.data.builder.media import read_wav
from a2llm.data.builder.stages import (AsrStage, AudioStage, EmotionStage, FilterStage, LlmStage, SmirkStage,
                                       TtsStage)
from a2llm.data.builder.stages.asr import Transcript
from a2llm.data.builder.stages.smirk import SmirkExtractor
from a2llm.data.builder.stages.tts import TtsConfig
from a2llm.motion.io import load_motion

from .helpers import RAVDESS_LABELS, make_video, make_wav

REPO = Path(__file__).resolve().parents[3]
ANSWER = "Oh I loved it, the ending was so funny"


class FakeAsr:
    name = "fake-asr"

    def transcribe(self, audio, rate):
        assert rate == 16000 and audio.ndim == 1
        return Transcript(text=ANSWER, avg_logprob=-0.2, num_tokens=12)


class FakeSer:
    name = "fake-ser"
    labels = RAVDESS_LABELS

    def classify(self, audio, rate):
        return {lab: (0.93 if lab == "happy" else 0.01) for lab in self.labels}


class FakeChat:
    name = "fake-llm"

    def complete(self, prompt):
        assert ANSWER in prompt
        return json.dumps({"cleaned_answer": "Oh, I loved it! The ending was so funny.",
                           "question": "Did you enjoy the movie last night?", "text_emotion": "happy",
                           "usable": True, "reason": ""})


def fake_smirk(images):
    b = images.shape[0]
    return {"expression_params": torch.zeros(b, 50), "pose_params": torch.zeros(b, 3),
            "jaw_params": torch.full((b, 3), 0.05), "eyelid_params": torch.zeros(b, 2)}


@pytest.fixture
def raw(tmp_path):
    make_video(tmp_path / "raw" / "talk.mp4", frames=50, fps=25, audio_s=2.0)
    make_wav(tmp_path / "raw" / "voice.wav", seconds=2.0)
    return tmp_path / "raw"


def test_full_pipeline_to_samples(raw, tmp_path, capsys):
    root = tmp_path / "m"
    assert main(["init", "--manifest", str(root), "--inputs", str(raw)]) == 0
    assert "added 2 item(s) (1 video, 1 audio)" in capsys.readouterr().out
    manifest = Manifest(root)
    stages = [AudioStage(), AsrStage(model=FakeAsr()), EmotionStage(model=FakeSer()), LlmStage(model=FakeChat()),
              TtsStage(TtsConfig(backend="cli")), SmirkStage(extractor=SmirkExtractor(fake_smirk)), FilterStage()]
    for stage in stages:
        run_stage(manifest, stage, progress=False)

    talk, voice = sorted(manifest.items, key=lambda it: it.source.name)
    rec = {r.id: r for r in manifest.records(["audio", "smirk", "filter"])}
    audio, rate = read_wav(rec[talk.id].path(rec[talk.id].output("audio")["audio"]))
    assert rate == 16000 and abs(audio.size / rate - 2.0) < 0.1  # the video's soundtrack, decoded by ffmpeg
    assert load_motion(root / rec[talk.id].output("smirk")["motion"]).motion.shape == (50, 58)
    assert rec[talk.id].output("filter")["passed"], rec[talk.id].output("filter")
    assert rec[voice.id].status("smirk") == "failed" and rec[voice.id].status("filter") == "pending"

    assert main(["status", "--manifest", str(root), "--json"]) == 0
    status = {s["stage"]: s for s in json.loads(capsys.readouterr().out)["stages"]}
    assert status["tts"]["done"] == 2 and status["smirk"]["failed"] == 1
    assert (status["filter"]["done"], status["filter"]["passed"], status["filter"]["blocked"]) == (1, 1, 1)

    out = tmp_path / "samples.jsonl"
    assert main(["export", "--manifest", str(root), "--out", str(out)]) == 0
    (sample,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert sample["id"] == talk.id and sample["question"]["text"] == "Did you enjoy the movie last night?"
    assert sample["answer"]["text"] == "Oh, I loved it! The ending was so funny."
    assert sample["answer"]["acoustic_emotion"] == "happy" and sample["answer"]["text_emotion"] == "happy"
    for key in (("question", "audio"), ("answer", "audio")):
        assert Path(sample[key[0]][key[1]]).is_file()
    assert np.allclose(load_motion(sample["motion"]).motion[:, 50], 0.05)


def test_cli_help_and_errors(raw, tmp_path, capsys, monkeypatch):
    helptext = subprocess.run([sys.executable, "-m", "a2llm.data.builder", "--help"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
    assert "init" in helptext and "status" in helptext and "audio, asr, emotion, llm, tts, smirk, filter" in helptext

    root = tmp_path / "m"
    assert main(["init", "--manifest", str(root), "--inputs", str(raw)]) == 0
    assert main(["status", "--manifest", str(root)]) == 0
    table = capsys.readouterr().out
    assert "2 items" in table and "audio" in table

    monkeypatch.delenv("SMIRK_REPO", raising=False)
    assert main(["run", "--manifest", str(root), "--stages", "smirk", "--no-progress"]) == 1
    assert "SMIRK is not available" in capsys.readouterr().err

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"asr": {"model": str(tmp_path / "no-such-whisper"), "device": "cpu"}}))
    code = main(["run", "--manifest", str(root), "--stages", "asr", "--config", str(cfg), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "could not load the ASR model" in captured.err
    assert "also running required stage(s): audio" in captured.out
    assert len(Manifest(root).results("audio")) == 2  # the required stage ran before the failing one

    cfg.write_text(json.dumps({"asr": {"modle": "x"}}))
    assert main(["run", "--manifest", str(root), "--config", str(cfg)]) == 1
    assert "unknown key(s) ['modle']" in capsys.readouterr().err
    cfg.write_text(json.dumps({"whisper": {}}))
    assert main(["status", "--manifest", str(root), "--config", str(cfg)]) == 1
    assert "not stages" in capsys.readouterr().err
    assert main(["run", "--manifest", str(root), "--stages", "dance"]) == 1
    assert "unknown stage 'dance'" in capsys.readouterr().err
    assert main(["run", "--manifest", str(root), "--shard", "3/2"]) == 1


def test_a_video_without_sound_fails_at_the_audio_stage(tmp_path):
    make_video(tmp_path / "raw" / "mute.mp4", frames=5)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    assert run_stage(manifest, AudioStage(), progress=False).failed == 1
    error = manifest.results("audio")[manifest.items[0].id].error
    assert error.startswith("MediaError: could not decode audio") and "has no audio stream" in error
