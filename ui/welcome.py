"""What a visitor meets before the first turn: a line on what the embedded model can talk about, example questions
from its world (clickable in the Conversation tab), and an idle avatar that blinks and moves its head a little.

The examples are wordings the model was trained on (never a held-out wording, template or topic of FLAME-QA-nano:
a2llm/data/nano/world.py), so a visitor's first click is answered the way the model is meant to answer.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ui.files import OUTPUT_ROOT

#: (intent, wording index, topic) of the example questions: one template of each answer emotion, then an opener and
#: a feeling. Wording 0 is always a seen wording; the topics are training topics — for each template one that the
#: shipped checkpoint answers with the right topic: the second-generation nano does not yet copy a question's topic
#: into its answer (it names one topic per template whatever is asked; docs/NANO.md, issue 21), so an example with
#: another topic would greet every visitor's first click with a wrong answer (so would half of the feelings; all
#: openers are right). tests/test_nano_checkpoint.py checks every example against the shipped checkpoint.
EXAMPLES = (("happy-0", 0, "the tour"), ("sad-0", 0, "the concert"), ("surprised-1", 0, "the party"),
            ("curious-0", 0, "the dinner"), ("contemptuous-0", 0, "the concert"), ("opener-who-are-you", 0, None),
            ("feeling-stressed", 0, None))
IDLE_SECONDS = 4.0
IDLE_VERSION = 1          # bump when idle_motion changes: cached clips are keyed by it


def is_nano(manifest: dict) -> bool:
    return str(manifest.get("name", "")).startswith("a2llm-nano")


def example_questions() -> list[str]:
    """The clickable example questions (FLAME-QA-nano's seen wordings with training topics)."""
    from a2llm.data.nano.world import INTENTS, render

    out = []
    for intent, wording, topic in EXAMPLES:
        if wording not in INTENTS[intent].seen_wordings:        # guards the table above against world changes
            raise ValueError(f"example {intent}/{wording} is a held-out wording")
        out.append(render(intent, wording, topic))
    return out


def welcome_line(manifest: dict) -> str:
    """One line (Markdown) saying what the conversation's model can talk about."""
    if not is_nano(manifest):
        return (f"**{manifest.get('name', 'This model')}** answers with speech and a face: speak or type a "
                "question below.")
    from a2llm.data.nano.templates import TRAIN_TOPICS

    shown = ", ".join(TRAIN_TOPICS[:4])
    return ("**A²-LLM-nano** is a tiny model trained here on small talk: questions about everyday events "
            f"({shown} and {len(TRAIN_TOPICS) - 4} more), how you feel, greetings, and follow-ups such as "
            "“Why?” or “Tell me more.”. It says so when a question is outside that world. Click an example or "
            "type your own:")


def idle_motion(seconds: float = IDLE_SECONDS, fps: int = 25) -> np.ndarray:
    """[T, 58] idle motion that loops seamlessly: two blinks, a slow small head sway, a faint smile."""
    from a2llm.head.open_head import EXPRESSION_NAMES
    from a2llm.motion.layout import EYELIDS, GLOBAL, MOTION_DIM

    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    m = np.zeros((n, MOTION_DIM), np.float32)
    period = n / fps                                  # every component repeats over the clip: no jump on loop
    m[:, GLOBAL.start] = 0.025 * np.sin(2 * math.pi * t / period)                        # pitch
    m[:, GLOBAL.start + 1] = 0.04 * np.sin(2 * math.pi * t / period + 1.0) \
        + 0.01 * np.sin(4 * math.pi * t / period)                                          # yaw
    for centre in (0.22 * period, 0.72 * period):     # ~200 ms blinks, fully closed at the middle
        lid = np.clip(1.0 - np.abs(t - centre) / 0.1, 0.0, 1.0)
        m[:, EYELIDS] = np.maximum(m[:, EYELIDS], (0.5 - 0.5 * np.cos(math.pi * lid))[:, None])
    m[:, EXPRESSION_NAMES.index("smile")] = 0.3
    return m


def idle_clip(head: str, size: int = 384, folder: Path | None = None) -> Path:
    """The idle loop of ``head`` as a silent mp4, rendered once and kept in outputs/idle/ (never pruned)."""
    from a2llm.head import load_head
    from a2llm.motion.io import MotionClip
    from renderer.render import render_clips

    folder = OUTPUT_ROOT / "idle" if folder is None else Path(folder)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in head)
    path = folder / f"idle-{name}-{size}-v{IDLE_VERSION}.mp4"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        render_clips([MotionClip(idle_motion())], path, head=load_head(head), size=size, progress=False)
    return path
