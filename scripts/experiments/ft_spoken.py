"""python scripts/experiments/ft_spoken.py NAME STEPS: continued pre-training of the shipped run's pretrain stage
on FLAME-QA-nano's own tasks only (no read-aloud rows; AQAA / ASR weighted up) — does hearing questions recover?"""
import sys, time, dataclasses
import torch
torch.set_num_threads(2)
from pathlib import Path
from a2llm.train.curriculum import Curriculum, load_config, StageConfig
name, steps = sys.argv[1], int(sys.argv[2])
root = Path("runs/exp4") / name / "curriculum"
root.mkdir(parents=True, exist_ok=True)
for s in ("pretrain", "tokenizer"):
    if not (root / s).exists():
        (root / s).symlink_to(Path("runs/nano/curriculum").resolve() / s)
cfg = load_config("configs/nano/curriculum.json", out=str(root))
st = StageConfig(name="spoken", init="pretrain", train="all", steps=steps, batch=16, lr_backbone=0.001,
                 motion_weight=0.0, warmup=20, save_every=10000, val_samples=32,
                 tasks=(("aqaa", 0.5), ("asr", 0.25), ("repeat", 0.1), ("tts", 0.15)))
cfg = dataclasses.replace(cfg, stages=cfg.stages + (st,))
t = time.time()
Curriculum(cfg).run(only="spoken")
print("trained", round(time.time() - t), "s", flush=True)
