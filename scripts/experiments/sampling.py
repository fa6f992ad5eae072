"""Greedy vs sampled replies of a nano checkpoint to typed questions (issue 20, docs/STEP_AUDIO2.md "Sampling").

`sampling.py [CHECKPOINT] [N_SEEDS]` (default checkpoints/a2llm-nano, 3): 72 typed questions — each of the 36
FLAME-QA-nano templates with two of the twelve topics the committed checkpoint trained on (template i: topics 2i
and 2i + 1, mod 12) — answered greedily and with the release's sampling (temperature 0.7, top-p 0.9,
repetition penalty 1.05) and with 0.7 / 0.9 without the penalty, each with N_SEEDS seeds. Prints, per setting, how
often the reply text equals the template's answer (`normalise_text`), over all questions and split into seen and
held-out templates. Run with OMP_NUM_THREADS=1 from the repository root: PYTHONPATH=. .venv/bin/python ...
"""
import json
import sys
import time

import numpy as np
import torch

from a2llm.data.nano.templates import TEMPLATES, TOPICS
from a2llm.generate import GREEDY, Generator, Sampling, normalise_text, question
from a2llm.model import A2LLM, load_checkpoint_tokenizer

torch.set_num_threads(1)
ckpt = sys.argv[1] if len(sys.argv) > 1 else "checkpoints/a2llm-nano"
n_seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
topics = TOPICS[:12]                   # the committed checkpoint's topics (the list may grow after it)
items = [(t, topics[(2 * i + k) % 12]) for i, t in enumerate(TEMPLATES) for k in (0, 1)]
asked = [t.fill(topic) for t, topic in items]
held = np.array([t.holdout for t, _ in items])

gen = Generator(A2LLM.from_pretrained(ckpt).eval(), load_checkpoint_tokenizer(ckpt))
settings = [("greedy", GREEDY)]
settings += [(f"0.7/0.9/1.05 seed {s}", Sampling.released(seed=s)) for s in range(n_seeds)]
settings += [(f"0.7/0.9/1.0 seed {s}", Sampling(temperature=0.7, top_p=0.9, seed=s)) for s in range(n_seeds)]
rows = []
for name, sampling in settings:
    t0, ok, example = time.perf_counter(), [], None
    for i in range(0, len(asked), 16):
        chunk = asked[i:i + 16]
        samples = [question(text=q)[0] for q, _ in chunk]
        for a, (q, ref) in zip(gen.answer(samples, "tqa", with_motion=False, sampling=sampling), chunk):
            ok.append(normalise_text(a.text) == normalise_text(ref))
            if not ok[-1] and example is None:
                example = {"question": q, "expected": ref, "reply": a.text}
    ok = np.array(ok)
    row = {"setting": name, "exact": round(float(ok.mean()), 3), "seen": round(float(ok[~held].mean()), 3),
           "held_out": round(float(ok[held].mean()), 3), "n": len(ok), "n_held_out": int(held.sum()),
           "seconds": round(time.perf_counter() - t0, 1), "first_miss": example}
    rows.append(row)
    print(json.dumps(row), flush=True)
print(f"greedy: exact {rows[0]['exact']:.3f}, seen templates {rows[0]['seen']:.3f}")
for penalty in ("1.05", "1.0"):
    got = [r for r in rows if f"0.7/0.9/{penalty} " in r["setting"]]
    for key in ("exact", "seen"):
        v = [r[key] for r in got]
        print(f"0.7/0.9/{penalty}: {key} mean {np.mean(v):.3f} (min {min(v):.3f}, max {max(v):.3f}) over "
              f"{len(v)} seeds", flush=True)
