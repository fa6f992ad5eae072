"""python scripts/experiments/per_read.py N [FOLDER]: forced-text TTS PER on N fresh read-aloud sentences (ids 20000+), with the first six shown phone by phone."""
import sys, torch, numpy as np
torch.set_num_threads(2)
from a2llm.data.phones import PHONES, collapse, phone_error_rate
from a2llm.data.nano.read import make_read_sample
from a2llm.generate import Generator
from a2llm.model import A2LLM, load_checkpoint_tokenizer
n = int(sys.argv[1]); folder = sys.argv[2] if len(sys.argv) > 2 else "checkpoints/a2llm-nano"
samples = [make_read_sample(20000 + i) for i in range(n)]
tok = load_checkpoint_tokenizer(folder)
gen = Generator(A2LLM.from_pretrained(folder), tok)
texts = [tok.encode(s.response_text, add_special_tokens=False) for s in samples]
P = lambda t: " ".join(PHONES[i] for i in collapse(t))
rates = []
for a, s, t in zip(gen.answer(samples, "tts", with_motion=False, force_text=texts), samples, texts):
    r = phone_error_rate(a.audio_codes, s.audio_tokens); rates.append(r)
    if len(rates) <= 6:
        print(f"{r:.2f} | {s.response_text} | {[tok.decode([x]) for x in t]}")
        print("  REF", P(s.audio_tokens)); print("  HYP", P(a.audio_codes))
print("mean PER fresh read", np.mean(rates))
