"""A tiny FLAME-QA-nano corpus, a random motion tokenizer and a tiny curriculum config, shared by the train tests."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
from a2llm.motion.tokenizer import MotionTokenizer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("nano-corpus")
    res = subprocess.run([sys.executable, "-m", "a2llm.data.nano", "--out", str(out), "--num", "60", "--seed", "7"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def tiny_rvq(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rvq")
    MotionTokenizer(MotionRVQVAE(RVQConfig(width=16, num_res_blocks=1, dilations=(1,), latent_dim=16,
                                           codebook_size=16))).save_pretrained(folder)
    return folder


def tiny_stages(**pretrain) -> list[dict]:
    return [dict(name="pretrain", init="scratch", train="all", steps=4, batch=3, lr_backbone=2e-3, motion_weight=0.0,
                 warmup=1, log_every=2, save_every=2, val_samples=3, **pretrain),
            dict(name="stage1", train="lora+connector", steps=2, batch=3, lr_lora=1e-3, lr_connector=1e-3, warmup=1,
                 log_every=1, val_samples=3, tasks={"aqaa": 1, "tts": 1}),
            dict(name="stage2", train="lora+connector", reset_lora=True, steps=2, batch=3, warmup=1, log_every=1,
                 val_samples=3, lr_lora=1e-3),
            dict(name="stage3", train="lora+connector", subset="high_dynamic", steps=1, batch=2, warmup=1,
                 val_samples=2, tasks={"tqa": 1}),
            dict(name="adapter-only", init="pretrain", train="connector", steps=2, batch=3, warmup=1,
                 val_samples=3, lr_connector=1e-3)]


def write_config(folder: Path, corpus: Path, rvq: Path, stages: list[dict], **extra) -> Path:
    """A curriculum JSON whose stages are separate files (as configs/nano/ has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for s in stages:
        (folder / f"{s['name']}.json").write_text(json.dumps(s))
        names.append(f"{s['name']}.json")
    cfg = {"data": str(corpus), "out": str(folder / "out"), "rvq": str(rvq), "tokenizer_vocab": 300,
           "final": "stage3", "stages": names, **extra}
    path = folder / "curriculum.json"
    path.write_text(json.dumps(cfg))
    return path
