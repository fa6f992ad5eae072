"""How well does a checkpoint hear? `asr_wer.py CHECKPOINT [N]` (twelfth session, issue 21).

Its ASR subtask on N seen-world questions per voice (a2llm.data.nano.world, seed 3), spoken with the corpus's
augmentation by 4 training voices of the three synthesizers and by the 5 held-out test voices: exact transcripts
and word error rate (normalised words), per group. Every spoken figure of `python -m a2llm.eval dialogue` is bounded
by this.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/experiments/asr_wer.py checkpoints/a2llm-nano 12
"""
import sys

import numpy as np
import torch

from a2llm.data.nano import world
from a2llm.data.nano.voices import VOICE_SETS
from a2llm.eval.dialogue import Asker
from a2llm.generate import question

TRAIN_VOICES = ["flite:kal", "festival:kal_diphone", "espeak:en-us", "flite:slt"]


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` (Levenshtein over words / reference words)."""
    r, h = ref.split(), hyp.split()
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d[0] = d.copy(), i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return d[len(h)] / max(1, len(r))


def main() -> None:
    torch.set_num_threads(1)
    checkpoint, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12
    asker = Asker(checkpoint, 200)
    for group, voices in (("training", TRAIN_VOICES), ("held-out", list(VOICE_SETS["test"]))):
        rng = np.random.default_rng(3)
        exact, errors = [], []
        for voice in voices:
            turns = [world.draw_dialogue(rng, 1, None)[0] for _ in range(n)]
            samples = [question(audio=asker.speech(t.question, voice))[0] for t in turns]
            heard = asker.gen.answer(samples, "asr", with_motion=False, max_new_tokens=96)
            for h, t in zip(heard, turns):
                ref, hyp = world.normalise(t.question), world.normalise(h.text)
                exact.append(ref == hyp)
                errors.append(wer(ref, hyp))
        print(f"{group} voices: exact {np.mean(exact):.1%}  WER {np.mean(errors):.1%}  ({len(exact)} questions)")


if __name__ == "__main__":
    main()
