"""Forced-text TTS PER under three ways of placing the given text (ninth session).

`pacing.py CHECKPOINT N RULE held|seen`: PER of the first N held-out-template (or seen-template) test answers of
data/flame-qa-nano, the text placed by RULE:
  model   — wherever the model would rather write than speak (no `WordPacing`);
  hold    — a new word only after the current one has a frame of speech;
  shipped — the same, unless the word is the model's own best text token (what `TextSchedule` does).
"""
import sys

import numpy as np
import torch

from a2llm import generate as G
from a2llm.data.phones import phone_error_rate
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

torch.set_num_threads(1)
ckpt, n, rule, which = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
samples = [s for s in MemoryDataset("data/flame-qa-nano", "test").samples
           if (s.meta.get("holdout") == "template") == (which == "held")][:n]
model, tok = A2LLM.from_pretrained(ckpt).eval(), load_checkpoint_tokenizer(ckpt)
gen = G.Generator(model, tok)
if rule == "model":
    G.WordPacing.may_start_word = lambda self: True
elif rule == "hold":
    G.best_text_token = lambda logits, layout: -1                 # never the model's own choice
elif rule != "shipped":
    sys.exit(f"unknown rule {rule!r}: model, hold or shipped")
rates = []
for k in range(0, len(samples), 16):
    chunk = samples[k:k + 16]
    texts = [tok.encode(s.response_text, add_special_tokens=False) for s in chunk]
    for a, s in zip(gen.answer(chunk, "tts", with_motion=False, force_text=texts), chunk):
        rates.append(phone_error_rate(a.audio_codes, s.audio_tokens))
print(f"{rule}, {which} templates: PER {100 * np.mean(rates):.1f} % on {len(rates)} answers")
