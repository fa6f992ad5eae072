"""python scripts/experiments/variant.py NAME key=value ...: run stage 3 with overrides from stage 2, then score it."""
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(2)
from a2llm.train.curriculum import Curriculum, load_config, StageConfig
name, overrides = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
root = Path("runs/exp3") / name / "curriculum"
root.mkdir(parents=True, exist_ok=True)
for s in ("pretrain", "stage1-connector", "stage2-joint", "tokenizer"):
    link = root / s
    if not link.exists():
        link.symlink_to(Path("runs/nano/curriculum").resolve() / s)
cfg = load_config("configs/nano/curriculum.json", out=str(root))
import dataclasses
stages = []
for st in cfg.stages:
    if st.name == "stage3-affective":
        kw = {k: v if isinstance(getattr(st, k), str) else json.loads(v) for k, v in overrides.items()}
        st = dataclasses.replace(st, **kw)
    stages.append(st)
cfg = dataclasses.replace(cfg, stages=tuple(stages))
t = time.time()
Curriculum(cfg).run(only="stage3-affective")
print("trained", round(time.time() - t), "s", flush=True)
