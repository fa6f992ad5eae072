"""Two CPU processes (torchrun, gloo) train a few curriculum steps and end with identical weights."""
import json
import os
import subprocess
import sys

from a2llm.model import A2LLM
from tests.nano_fixture import ROOT, tiny_stages, write_config


def test_two_gloo_processes_stay_in_sync(tiny_corpus, tiny_rvq, tmp_path):
    # with the auxiliary CTC loss as nano ships it: its head trains in pretrain, only LoRA feels it in stage 1
    stages = tiny_stages(ctc_weight=0.3)[:2]
    stages[1]["ctc_weight"] = 0.3
    path = write_config(tmp_path, tiny_corpus, tiny_rvq, stages, final="stage1", ctc_layer=2)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "a2llm.train", "curriculum", "--config", str(path), "--quiet"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("curriculum finished") == 1          # only the main process reports
    for s in stages:
        done = json.loads((tmp_path / "out" / s["name"] / "done.json").read_text())
        # ranks_in_sync: per-tensor checksums of the trainable weights, gathered from both processes, equal.
        assert done["processes"] == 2 and done["ranks_in_sync"] is True
    model = A2LLM.from_pretrained(tmp_path / "out" / "stage1")
    pre = A2LLM.from_pretrained(tmp_path / "out" / "pretrain")
    assert any(n.endswith("lora_B.default.weight") and p.abs().sum() > 0 for n, p in model.backbone.named_parameters())
    assert not all(p.equal(q) for p, q in zip(model.connector.parameters(), pre.connector.parameters()))
    assert all(p.equal(q) for p, q in zip(model.backbone.ctc_head.parameters(), pre.backbone.ctc_head.parameters()))
    assert "ctc_loss" in (tmp_path / "out" / "stage1" / "log.csv").read_text().splitlines()[0]
