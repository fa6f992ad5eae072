"""python scripts/experiments/layout_ab.py READ_DIR STEPS LAYOUT... : TTS-only training from scratch on a read-aloud
corpus (with meta.answer_words) in each text layout, then forced-text TTS PER on 48 fresh read-aloud sentences.

Fifth session: does the word-aligned layout (text token right before its word's speech) teach nano to read new
sentences faster than the chunked one (1 text : 4 audio, text running further and further ahead)? One process,
BPE and motion tokenizer of the shipped run (runs/nano/curriculum/tokenizer, runs/nano/rvq); outputs runs/exp5/.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from a2llm.data.nano.read import make_read_sample
from a2llm.data.phones import phone_error_rate
from a2llm.generate import Generator
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.curriculum import Curriculum, load_config

torch.set_num_threads(2)
Curriculum.validate = lambda self, *a, **k: {}      # the read-aloud corpus has no val split
read, steps, layouts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
lexicon = 0
if layouts and layouts[0].startswith("lexicon="):          # pronunciation-aware text embeddings (sixth session)
    lexicon, layouts = int(layouts[0].split("=")[1]), layouts[1:]
fresh = [make_read_sample(20000 + i) for i in range(48)]
for layout in layouts:
    out = Path(f"runs/exp5/layout-{layout}-{steps}" + (f"-lex{lexicon}" if lexicon else ""))
    out.mkdir(parents=True, exist_ok=True)
    stage = dict(name="tts", init="scratch", train="all", steps=steps, batch=16, lr_backbone=2e-3, motion_weight=0.0,
                 warmup=50, tasks={"tts": 1.0}, log_every=50, save_every=1000)
    (out / "tts.json").write_text(json.dumps(stage))
    (out / "curriculum.json").write_text(json.dumps({
        "data": read, "out": str(out / "run"), "rvq": "runs/nano/rvq", "tokenizer": "runs/nano/curriculum/tokenizer",
        "text_layout": layout, "lexicon_phones": lexicon, "final": "tts", "stages": ["tts.json"]}))
    final = Curriculum(load_config(out / "curriculum.json")).run()
    tok = load_checkpoint_tokenizer(final)
    gen = Generator(A2LLM.from_pretrained(final), tok)
    texts = [tok.encode(s.response_text, add_special_tokens=False) for s in fresh]
    rates = []
    for i in range(0, len(fresh), 16):
        answers = gen.answer(fresh[i:i + 16], "tts", with_motion=False, force_text=texts[i:i + 16])
        rates += [phone_error_rate(a.audio_codes, s.audio_tokens) for a, s in zip(answers, fresh[i:i + 16])]
    seconds = json.loads((final / "done.json").read_text())["seconds"]
    print(json.dumps({"layout": layout, "lexicon": lexicon, "steps": steps, "seconds": seconds, "per_fresh": round(float(np.mean(rates)), 3),
                      "per_median": round(float(np.median(rates)), 3)}), flush=True)
