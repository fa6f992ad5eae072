"""Does nano hear the words of a spoken question? `hearing.py N SPLIT [FOLDER]` — on the first N questions of
SPLIT (test: held-out voices; val: training voices): exact ASR and AQAA answers, and how often the ASR transcript
names the question's topic (seventh session). Greedy decoding, as the tables do."""
import os
import sys

import numpy as np
import torch

from a2llm.data.nano.templates import TOPICS
from a2llm.generate import Generator, normalise_text
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

torch.set_num_threads(int(os.environ.get("T", "2")))
n, split = int(sys.argv[1]), sys.argv[2]
folder = sys.argv[3] if len(sys.argv) > 3 else "checkpoints/a2llm-nano"
holdout = "voice" if split == "test" else None
qs = [s for s in MemoryDataset("data/flame-qa-nano", split).samples if s.meta.get("holdout") == holdout][:n]
tok = load_checkpoint_tokenizer(folder)
gen = Generator(A2LLM.from_pretrained(folder).eval(), tok)


def topics(text):
    return [t for t in TOPICS if normalise_text(t) in normalise_text(text)]


for task in ("asr", "aqaa"):
    exact, topic = [], []
    for i in range(0, len(qs), 16):
        chunk = qs[i:i + 16]
        for a, s in zip(gen.answer(chunk, task, with_motion=False, max_new_tokens=60 if task == "asr" else 400), chunk):
            ref = s.question_text if task == "asr" else s.response_text
            exact.append(normalise_text(a.text) == normalise_text(ref))
            topic.append(topics(a.text) == topics(s.question_text))
            if len(exact) <= 4:
                print(f"{task} | {s.question_text} -> {a.text}")
    extra = f", topic right {np.mean(topic):.3f}" if task == "asr" else ""
    print(f"{split} {task}: exact {np.mean(exact):.3f}{extra} ({len(exact)} questions)", flush=True)
