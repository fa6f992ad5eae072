"""Forced-text TTS PER on held-out-template answers, by sentence: `per_words.py [N] [FOLDER]` — the first N (64)
held-out-template test answers, mean PER with and without a word that neither training vocabulary has, and the
mean per answer template (topic masked as T), worst first (seventh session)."""
import re
import sys

import numpy as np
import torch

from a2llm.data.nano.templates import TOPICS
from a2llm.data.phones import phone_error_rate
from a2llm.generate import Generator
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

torch.set_num_threads(2)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
folder = sys.argv[2] if len(sys.argv) > 2 else "checkpoints/a2llm-nano"
tok = load_checkpoint_tokenizer(folder)
gen = Generator(A2LLM.from_pretrained(folder).eval(), tok)
test = [s for s in MemoryDataset("data/flame-qa-nano", "test").samples if s.meta.get("holdout") == "template"][:n]
UNSEEN = {"astonishing", "heartbreaking", "questionable", "unbelievable", "hmph"}   # in neither read vocabulary
rows = []
for i in range(0, len(test), 16):
    chunk = test[i:i + 16]
    texts = [tok.encode(s.response_text, add_special_tokens=False) for s in chunk]
    for a, s in zip(gen.answer(chunk, "tts", with_motion=False, force_text=texts), chunk):
        rows.append((bool(UNSEEN & set(re.findall(r"[a-z]+", s.response_text.lower()))),
                     phone_error_rate(a.audio_codes, s.audio_tokens), s.response_text))
for flag, name in ((True, "with a word of neither vocabulary"), (False, "without")):
    per = [p for f, p, _ in rows if f == flag]
    print(f"{name}: {len(per)} answers, PER {np.mean(per):.3f}")
by = {}
for _, p, text in rows:
    for topic in TOPICS:
        text = re.sub(re.escape(topic), "T", text, flags=re.IGNORECASE)
    by.setdefault(text, []).append(p)
for text, per in sorted(by.items(), key=lambda kv: -np.mean(kv[1])):
    print(f"{np.mean(per):.2f}  ({len(per)})  {text}")
