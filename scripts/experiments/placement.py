"""python scripts/experiments/placement.py FOLDER N RULE... : forced-text TTS PER on N fresh read-aloud sentences
of a word-layout model under several placements of the text (sixth session).

RULE: "mass" (the shipped rule: next text token when the model's probability of some non-audio token beats
that of some audio code), "max" (the fifth session's rule: best non-audio logit vs best audio logit), "next"
(the forced token's own logit vs the best audio logit), "oracle" (each word's text at the reference's own
word-start frame: how well the model says words it is told when to say; not a TTS, it reads the reference).
Prints RULE mean median, and three REF/HYP phone strings for the first RULE.
"""
import sys

import numpy as np
import torch

import a2llm.generate as G
from a2llm.data.collate import CollatorConfig, FlameQACollator
from a2llm.data.nano.read import make_read_sample
from a2llm.data.phones import PHONES, collapse, phone_error_rate
from a2llm.model import A2LLM, load_checkpoint_tokenizer

torch.set_num_threads(1)
folder, n, rules = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
fresh = [make_read_sample(20000 + i) for i in range(n)]
tok = load_checkpoint_tokenizer(folder)
gen = G.Generator(A2LLM.from_pretrained(folder), tok)
col = FlameQACollator(tok, gen.layout, CollatorConfig(text_layout="word"))
L = gen.layout


def other_and_audio(logits):
    audio = logits[L.audio_offset:L.audio_offset + L.num_audio_codes]
    return torch.cat([logits[:L.audio_offset], logits[L.audio_offset + L.num_audio_codes:]]), audio


class Schedule(G.TextSchedule):
    """TextSchedule with a choosable placement rule (and, for "oracle", the reference's slots)."""
    rule, slots = "mass", None

    def choose(self, logits):
        t = super().choose(logits)
        self.spoken = getattr(self, "spoken", 0) + int(L.is_audio(t))
        return t

    def _text_due(self, logits):
        if self.i >= len(self.text):
            return False
        if self.rule == "oracle":
            return self.slots[self.i] <= getattr(self, "spoken", 0)
        if self.rule == "mass":
            return super()._text_due(logits)
        other, audio = other_and_audio(logits)
        if self.i == 0:
            return True
        if self.rule == "max":
            return bool(other.max() > audio.max())
        return bool(logits[self.text[self.i]] > audio.max())     # "next"


pending: list = []


def make_schedule(text, layout, text_layout="chunked"):
    s = Schedule(text, layout, text_layout=text_layout)
    s.rule, s.slots = pending.pop(0)
    return s


G.TextSchedule = make_schedule
P = lambda t: " ".join(PHONES[i] for i in collapse(t))        # noqa: E731
for r, rule in enumerate(rules):
    rates = []
    for i in range(0, n, 16):
        batch = fresh[i:i + 16]
        texts = []
        for s in batch:
            text, slots = col._word_slots(s)
            texts.append(text)
            pending.append((rule, slots))
        answers = gen.answer(batch, "tts", with_motion=False, force_text=texts)
        rates += [phone_error_rate(a.audio_codes, s.audio_tokens) for a, s in zip(answers, batch)]
        if r == 0 and i == 0:
            for a, s in list(zip(answers, batch))[:3]:
                print(s.response_text, "\n  REF", P(s.audio_tokens), "\n  HYP", P(a.audio_codes))
    print(rule, round(float(np.mean(rates)), 3), round(float(np.median(rates)), 3), flush=True)
