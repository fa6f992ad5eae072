"""Experiment data: FLAME-QA-nano's train split + N read-aloud samples (random sentences of training-template words)."""
import re, sys, dataclasses
import numpy as np
from a2llm.data.format import FlameQAWriter
from a2llm.data.nano.templates import TEMPLATES, TOPICS, CONTEXT_TURNS
from a2llm.train.data import MemoryDataset
from ui.nano_systems import spoken_sample

out, n, with_orig = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
texts = [t.fill(top)[1] for t in TEMPLATES if not t.holdout for top in TOPICS] + [a for _, a in CONTEXT_TURNS]
words = sorted({w for t in texts for w in re.findall(r"[A-Za-z']+", t.lower())})
print(len(words), "words", file=sys.stderr)
rng = np.random.default_rng(0)
w = FlameQAWriter(out, name="exp-read", shard_size=500)
if with_orig:
    for s in MemoryDataset("data/flame-qa-nano", "train").samples:
        w.add(s)
    for s in MemoryDataset("data/flame-qa-nano", "val").samples:
        w.add(s)
for i in range(n):
    k = int(rng.integers(4, 11))
    sent = " ".join(rng.choice(words, k)).capitalize() + rng.choice([".", "!", "?", ","])
    s = spoken_sample(sent, "neutral", seed=i)
    s = dataclasses.replace(s, id=f"read-{i:06d}", split="val" if i % 20 == 0 else "train",
                            question_text=sent, question_audio=s.response_audio)
    w.add(s)
print(w.close(), file=sys.stderr)
