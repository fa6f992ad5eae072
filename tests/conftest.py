"""Shared test set-up: single-threaded torch, and a tiny FLAME-QA-nano corpus + random motion tokenizer."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run every test module single-threaded: the suite's models are tiny, and on a 2-core machine torch's
    intra-op threads mostly hand work back and forth (a nano decode step: ~3 ms on one thread, ~30 ms on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """60 FLAME-QA-nano samples (real espeak-ng speech, procedural motion)."""
    out = tmp_path_factory.mktemp("nano-corpus")
    res = subprocess.run([sys.executable, "-m", "a2llm.data.nano", "--out", str(out), "--num", "60", "--seed", "7"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def tiny_rvq(tmp_path_factory):
    """A randomly initialised small motion tokenizer folder."""
    from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
    from a2llm.motion.tokenizer import MotionTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rvq")
    MotionTokenizer(MotionRVQVAE(RVQConfig(width=16, num_res_blocks=1, dilations=(1,), latent_dim=16,
                                           codebook_size=16))).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus, tiny_rvq, tmp_path_factory):
    """A tiny curriculum (all stages of tests.nano_fixture.tiny_stages), a 2-step audio-only baseline and the
    assembled checkpoint folder, as ``python -m a2llm.train nano`` lays them out.

    Returns (curriculum config, curriculum output folder, checkpoint folder)."""
    import shutil

    from a2llm.baselines.audio_only import train_audio_only
    from a2llm.train.curriculum import Curriculum, load_config
    from a2llm.train.nano import NanoConfig, assemble
    from tests.nano_fixture import tiny_stages, write_config

    work = tmp_path_factory.mktemp("nano-work")
    path = write_config(work / "config", tiny_corpus, tiny_rvq, tiny_stages(), out=str(work / "curriculum"))
    cfg = load_config(path)
    Curriculum(cfg, progress=False).run()
    train_audio_only(tiny_corpus, tiny_rvq, work / "audio-only", steps=2, batch=2, progress=False)
    shutil.copytree(tiny_rvq, work / "rvq")
    shutil.copytree(ROOT / "checkpoints" / "a2llm-nano" / "token2wav", work / "token2wav",
                    ignore=shutil.ignore_patterns("train_state.pt"))
    ckpt = assemble(NanoConfig(work=str(work), out=str(work / "ckpt"), curriculum=str(path)))
    return cfg, work / "curriculum", ckpt
