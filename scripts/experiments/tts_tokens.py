"""A model's forced-text TTS next to the training layout, token by token (ninth session).

`tts_tokens.py CHECKPOINT I [I ...]` takes the I-th held-out-template test answers of data/flame-qa-nano and prints
HYP (what `Generator.answer(..., "tts", force_text=...)` produced: «text pieces» and phone names of the speech codes)
and REF (the same answer as the collator lays it out for training). This is how the ninth session saw the training
layout running one word ahead of the speech.
"""
import sys

import torch

from a2llm.data.phones import PHONES
from a2llm.generate import Generator
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

torch.set_num_threads(2)
ckpt, idx = sys.argv[1], [int(x) for x in sys.argv[2:]]
held = [s for s in MemoryDataset("data/flame-qa-nano", "test").samples if s.meta.get("holdout") == "template"]
model, tok = A2LLM.from_pretrained(ckpt).eval(), load_checkpoint_tokenizer(ckpt)
gen = Generator(model, tok)
L = gen.layout


def show(ids):
    return " ".join(PHONES[t - L.audio_offset] if L.is_audio(t) else f"«{tok.convert_ids_to_tokens(t)}»" for t in ids)


chunk = [held[i] for i in idx]
texts = [tok.encode(s.response_text, add_special_tokens=False) for s in chunk]
for a, s in zip(gen.answer(chunk, "tts", with_motion=False, force_text=texts), chunk):
    row = gen.collate.build(s, "tts")
    print(s.response_text, "\nHYP", show(a.tokens), "\nREF", show(row.ids[row.ids.index(L.tts_start) + 1:]), "\n")
