"""Exact AQAA / TQA / ASR answers of A²-LLM folders: `answers.py N FOLDER ...` on the first N held-out-voice test questions (SPLIT=val: val questions, training voices)."""
import sys, json, torch, numpy as np
torch.set_num_threads(2)
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.generate import Generator, normalise_text
from a2llm.train.data import MemoryDataset
n = int(sys.argv[1]); SPLIT = __import__("os").environ.get("SPLIT", "test")
test = [s for s in MemoryDataset("data/flame-qa-nano", SPLIT).samples if s.meta.get("holdout") == ("voice" if SPLIT == "test" else None)][:n]
for folder in sys.argv[2:]:
    tok = load_checkpoint_tokenizer(folder)
    gen = Generator(A2LLM.from_pretrained(folder).eval(), tok)
    out = {"folder": folder}
    for task in ("aqaa", "tqa", "asr"):
        ok = []
        for i in range(0, len(test), 16):
            chunk = test[i:i + 16]
            for a, s in zip(gen.answer(chunk, task, with_motion=False, max_new_tokens=400 if task != "asr" else 60), chunk):
                ref = s.question_text if task == "asr" else s.response_text
                ok.append(normalise_text(a.text) == normalise_text(ref))
        out[task] = round(float(np.mean(ok)), 3)
    print(json.dumps(out), flush=True)
