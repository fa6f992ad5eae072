"""python scripts/experiments/score.py N FOLDER...: MOD / UFD / temporal corr of each A²-LLM folder on the first N test samples."""
import sys, time, json
import torch
torch.set_num_threads(2)
from a2llm.eval.tables import reference_motions, motion_metrics
from a2llm.head import load_head
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset
n = int(sys.argv[1])
samples = MemoryDataset("data/flame-qa-nano", "test").samples[:n]
head = load_head("open")
tok = load_checkpoint_tokenizer("checkpoints/a2llm-nano")
for folder in sys.argv[2:]:
    t = time.time()
    m = motion_metrics(reference_motions(A2LLM.from_pretrained(folder), tok, samples), samples, head)
    print(json.dumps({"folder": folder, "mod_mm": round(m["mod_mm"], 3), "ufd": round(m["ufd"], 3),
                      "temporal_corr": round(m["temporal_corr"], 3), "s": round(time.time() - t)}), flush=True)
