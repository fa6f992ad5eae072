"""Where the app writes its outputs: outputs/ (git-ignored), unique names, and a bound on how much it keeps.

Each conversation turn writes one folder ``outputs/turn-<id>/`` (its streamed segments, the whole turn's mp4, its
motion and exports); plots, comparison videos and vote exports are loose files ``outputs/<stem>-<id>.<ext>``.
:func:`prune_outputs` keeps the newest ``keep_turns`` turn folders and the newest ``4 * keep_turns`` loose files of
those kinds, and never touches anything else: studies and their votes (``outputs/studies/``), desktop-mode
recordings (``outputs/desktop/``), the idle clips (``outputs/idle/``) and any folder a turn is still writing.
"""
from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

OUTPUT_ROOT = Path(__file__).resolve().parents[1] / "outputs"
#: Loose files that only show one visitor a result once (Gradio serves its own copy): safe to delete when old.
TRANSIENT_STEMS = ("turns", "compare", "mouth", "study", "votes", "system", "out")
DEFAULT_KEEP_TURNS = 50
#: A folder or file younger than this is never pruned: another session may be handing it to Gradio right now.
MIN_AGE_S = 60.0

_lock = threading.Lock()
_active: set[Path] = set()
_keep_turns = DEFAULT_KEEP_TURNS


def new_output(suffix: str, stem: str = "out") -> Path:
    """A fresh, not-yet-existing path like outputs/<stem>-<uuid><suffix>."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    return OUTPUT_ROOT / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"


def set_keep_turns(n: int) -> None:
    """How many turn folders :func:`prune_outputs` keeps (the app's ``--keep-turns``)."""
    global _keep_turns
    if n < 1:
        raise ValueError(f"--keep-turns must be at least 1, got {n}")
    _keep_turns = int(n)


def keep_turns() -> int:
    return _keep_turns


def new_turn_dir(root: Path | None = None) -> Path:
    """A fresh turn folder, marked active (never pruned) until :func:`release` is called for it."""
    root = OUTPUT_ROOT if root is None else Path(root)
    path = root / f"turn-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    with _lock:
        _active.add(path)
    return path


def release(path: Path) -> None:
    """The turn writing ``path`` is over: it may be pruned once it is old enough."""
    with _lock:
        _active.discard(Path(path))


def prune_outputs(keep: int | None = None, root: Path | None = None, min_age_s: float = MIN_AGE_S) -> int:
    """Delete all but the newest ``keep`` turn folders (default: :func:`keep_turns`) and all but the newest
    ``4 * keep`` transient loose files under ``root``; returns how many entries were deleted."""
    root = OUTPUT_ROOT if root is None else Path(root)
    keep = _keep_turns if keep is None else keep
    if not root.is_dir():
        return 0
    now = time.time()

    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return now                                 # vanished meanwhile: treated as new, left alone

    with _lock:
        active = set(_active)
    turns = sorted((p for p in root.glob("turn-*") if p.is_dir() and p not in active), key=mtime, reverse=True)
    loose = sorted((p for p in root.iterdir() if p.is_file() and p.name.split("-", 1)[0] in TRANSIENT_STEMS),
                   key=mtime, reverse=True)
    removed = 0
    for old in turns[keep:]:
        if now - mtime(old) >= min_age_s:
            shutil.rmtree(old, ignore_errors=True)
            removed += 1
    for old in loose[4 * keep:]:
        if now - mtime(old) >= min_age_s:
            old.unlink(missing_ok=True)
            removed += 1
    return removed
