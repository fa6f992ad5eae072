"""python scripts/experiments/per.py N FOLDER...: TTS PER (seen / held-out templates) on the first N test samples of each kind."""
import sys, json, torch
torch.set_num_threads(2)
from a2llm.eval.tables import tts_phone_error_rate
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset
n = int(sys.argv[1])
test = MemoryDataset("data/flame-qa-nano", "test").samples
held = [s for s in test if s.meta.get("holdout") == "template"][:n]
seen = [s for s in test if s.meta.get("holdout") != "template"][:n]
tok = load_checkpoint_tokenizer("checkpoints/a2llm-nano")
for f in sys.argv[2:]:
    r = tts_phone_error_rate(A2LLM.from_pretrained(f), tok, held + seen)
    print(json.dumps({"folder": f, **{k: round(v, 3) for k, v in r.items()}}), flush=True)
