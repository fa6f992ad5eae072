"""TTS PER on 48 fresh random sentences of training-template words (never trained on), and on held-out words."""
import re, sys, json, torch, numpy as np, dataclasses
torch.set_num_threads(2)
from a2llm.eval.tables import tts_phone_error_rate
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.data.nano.templates import TEMPLATES, TOPICS, CONTEXT_TURNS
from ui.nano_systems import spoken_sample
texts = [t.fill(top)[1] for t in TEMPLATES if not t.holdout for top in TOPICS] + [a for _, a in CONTEXT_TURNS]
words = sorted({w for t in texts for w in re.findall(r"[A-Za-z']+", t.lower())})
held = sorted({w for t in TEMPLATES if t.holdout for top in TOPICS for w in re.findall(r"[A-Za-z']+", t.fill(top)[1].lower())} - set(words))
print(len(held), "held-out-only words:", held[:30], file=sys.stderr)
rng = np.random.default_rng(123)
samples = []
for i in range(48):
    sent = " ".join(rng.choice(words, int(rng.integers(4, 11)))).capitalize() + "."
    samples.append(dataclasses.replace(spoken_sample(sent, "neutral", i), meta={"holdout": None}))
tok = load_checkpoint_tokenizer("checkpoints/a2llm-nano")
for f in sys.argv[1:]:
    r = tts_phone_error_rate(A2LLM.from_pretrained(f), tok, samples)
    print(json.dumps({"folder": f, "new_sentences_seen_words": round(r["all"], 3)}), flush=True)
