"""A study made in one click from the built-in nano systems: each sentence is said by FLAME-QA-nano's answer voice,
animated by every chosen system (ui/nano_systems.py) and rendered, one video per system per sentence; the videos
become a blinded study (ui/study.py). No gradio here."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ui.study import Study, StudyShelf

DEFAULT_SYSTEMS = ("A²-LLM-nano", "adapter-only", "audio-only")
DEFAULT_SENTENCES = ("happy | Haha, that is wonderful news, I love it!\n"
                     "sad | Oh no, that is so sad, I am sorry.\n"
                     "surprised | Wow, I never expected that!")
MAX_SENTENCES = 10
VIDEO_SIZE = 256


def parse_sentences(text: str) -> list[tuple[str, str]]:
    """One sentence per line, optionally ``emotion | sentence`` (the ground truth's emotion; default neutral)
    -> [(emotion, sentence)], or a ValueError saying what is wrong."""
    from a2llm.data.format import EMOTIONS

    out = []
    for k, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        emotion, _, sentence = line.rpartition("|")
        emotion = emotion.strip().lower() or "neutral"
        if emotion not in EMOTIONS:
            raise ValueError(f"line {k}: unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
        if not sentence.strip():
            raise ValueError(f"line {k}: no sentence after the emotion")
        out.append((emotion, sentence.strip()))
    if not out:
        raise ValueError("Type at least one sentence (one per line).")
    if len(out) > MAX_SENTENCES:
        raise ValueError(f"{len(out)} sentences: a built-in study takes at most {MAX_SENTENCES}.")
    return out


def builtin_systems(checkpoint: str | Path) -> list[str]:
    """The systems a built-in study can compare: the procedural ground truth, the checkpoint's A²-LLM models and
    the audio-only avatar when the checkpoint ships it."""
    from a2llm.model import read_manifest
    from ui.nano_systems import system_folders

    names = ["ground truth", *system_folders(checkpoint)]
    if "audio-only" in read_manifest(checkpoint).get("baselines", {}):
        names.append("audio-only")
    return names


def create_builtin_study(shelf: StudyShelf, name: str, mode: str, systems: list[str], sentences: str,
                         checkpoint: str | Path, head: str = "human", size: int = VIDEO_SIZE) -> Study:
    """Render every chosen system saying every sentence, then shelve them as study ``name``."""
    from a2llm.head import load_head
    from a2llm.motion.io import load_motion
    from renderer.render import render_clips
    from ui.nano_systems import animate_with_nano_systems, spoken_sample

    shelf.new_folder(name)                                # a bad or taken name fails before any rendering
    lines = parse_sentences(sentences)
    offered = builtin_systems(checkpoint)
    unknown = [s for s in systems if s not in offered]
    if unknown or len(set(systems)) < 2:
        raise ValueError(f"Choose at least two of the systems {', '.join(offered)}" +
                         (f" (unknown: {', '.join(unknown)})" if unknown else "") + ".")
    model = load_head(head)
    with tempfile.TemporaryDirectory(prefix="a2llm-study-") as tmp:
        videos = []
        for k, (emotion, sentence) in enumerate(lines, 1):
            files = animate_with_nano_systems(spoken_sample(sentence, emotion), checkpoint)
            for system in systems:
                path = Path(tmp) / f"s{k:02d}__{system}.mp4"
                render_clips([load_motion(files[system])], path, head=model, size=size, progress=False)
                videos.append(path)
            for f in files.values():                     # the motion files are only a step on the way
                Path(f).unlink(missing_ok=True)
        return shelf.create(name, mode, list(systems), videos)
