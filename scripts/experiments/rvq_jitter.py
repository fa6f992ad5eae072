"""RVQ round-trip upper-face jitter (per-sample mean and pooled) and MOD of two tokenizers on the first 96 test clips of
data/flame-qa-nano (docs/TOKENIZER.md, "Decoder upsampling"). PYTHONPATH=. python scripts/experiments/rvq_jitter.py"""
import numpy as np, torch, json
torch.set_num_threads(1)
from a2llm.motion.tokenizer import MotionTokenizer
from a2llm.head import load_head
from a2llm.eval import metrics as M
from a2llm.train.data import MemoryDataset
head = load_head("open")
test = MemoryDataset("data/flame-qa-nano", "test").samples[:96]
out = {}
for name, path in (("shipped (transpose)", "checkpoints/a2llm-nano"), ("new run (repeat)", "/work/nano-run/rvq")):
    tok = MotionTokenizer.from_pretrained(path)
    per, num, den, mods = [], 0.0, 0.0, []
    for s in test:
        gt = s.motion
        rec = tok.decode(tok.encode(gt))[:len(gt)]
        dg = M.upper_face_displacement(head.vertices(gt, canonical=True), head)
        dr = M.upper_face_displacement(head.vertices(rec, canonical=True), head)
        per.append(M.upper_face_jitter(dr, dg))
        num += np.abs(np.diff(dr, n=2, axis=0)).sum(); den += np.abs(np.diff(dg, n=2, axis=0)).sum()
        mods.append(M.compute_metrics(rec, gt, head)["mod_mm"])
    out[name] = {"jitter_per_sample_mean": float(np.nanmean(per)), "jitter_pooled": num / den, "mod_mm": float(np.mean(mods))}
print(json.dumps(out, indent=1))
