"""python scripts/experiments/ft.py NAME DATA STEPS: TTS-only continued pre-training from the shipped run's pretrain stage."""
import sys, time, dataclasses
import torch
torch.set_num_threads(2)
from pathlib import Path
from a2llm.train.curriculum import Curriculum, load_config, StageConfig
name, data, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = Path("runs/exp3") / name / "curriculum"
root.mkdir(parents=True, exist_ok=True)
for s in ("pretrain", "tokenizer"):
    if not (root / s).exists():
        (root / s).symlink_to(Path("runs/nano/curriculum").resolve() / s)
cfg = load_config("configs/nano/curriculum.json", out=str(root), data=data)
st = StageConfig(name="read", init="pretrain", train="all", steps=steps, batch=16, lr_backbone=0.001,
                 motion_weight=0.0, warmup=20, tasks=(("tts", 1.0),), save_every=10000, val_samples=32)
cfg = dataclasses.replace(cfg, stages=cfg.stages + (st,))
t = time.time()
Curriculum(cfg).run(only="read")
print("trained", round(time.time() - t), "s", flush=True)
