"""Does nano copy the question's topic into its answer? `topic_copy.py [CHECKPOINT]` (twelfth session, issue 21).

Each topic-bearing template among the welcome examples' (happy-0, sad-0, surprised-1, curious-0, contemptuous-0),
asked in its own wording with every training topic, typed, greedy: how many of the 28 answers are right, and which
topics the model names. A model that copies names every topic; the second-generation nano names one per template
(1 of 28 right each).

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/experiments/topic_copy.py checkpoints/a2llm-nano
"""
import sys
from collections import Counter

import torch

from a2llm.data.nano.templates import TRAIN_TOPICS
from a2llm.data.nano.world import normalise, render, respond
from a2llm.eval.dialogue import Asker, Item, _right

TEMPLATES = ("happy-0", "sad-0", "surprised-1", "curious-0", "contemptuous-0")


def main() -> None:
    torch.set_num_threads(1)
    asker = Asker(sys.argv[1] if len(sys.argv) > 1 else "checkpoints/a2llm-nano", 200)
    for template in TEMPLATES:
        items = [Item(render(template, 0, t), respond(template, t)[0], "template") for t in TRAIN_TOPICS]
        replies, _ = asker.ask(items)
        named = Counter(next((t for t in TRAIN_TOPICS if normalise(t).split()[-1] in normalise(r).split()), "none")
                        for r in replies)
        right = sum(_right(r, it.answer) for it, r in zip(items, replies))
        print(f"{template:15s} right {right:2d}/{len(items)}  topics named: {dict(named.most_common(4))}")


if __name__ == "__main__":
    main()
