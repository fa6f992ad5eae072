"""Helpers for tests that train tiny curricula: stage lists and config files."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
           "final": "stage3", "stages": names}
    cfg.update(extra)
    path = folder / "curriculum.json"
    path.write_text(json.dumps(cfg))
    return path
