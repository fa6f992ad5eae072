"""The checkpoints a visitor may choose: the A²-LLM folders found under checkpoints/ plus the one the command line
named. The page only ever sees their names; a name is mapped to its folder here, on the server."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_ROOT = ROOT / "checkpoints"
MANIFEST = "a2llm.json"

_registry: dict[str, Path] = {}


def find_checkpoints(extra: str | Path | None = None, root: Path = CHECKPOINT_ROOT) -> dict[str, Path]:
    """{name: folder} of every A²-LLM checkpoint folder directly under ``root`` (one with an ``a2llm.json``),
    plus ``extra`` (the ``--checkpoint`` folder) wherever it is; names are folder names, made unique."""
    found: dict[str, Path] = {}
    folders = sorted(p for p in Path(root).glob(f"*/{MANIFEST}")) if Path(root).is_dir() else []
    candidates = [p.parent.resolve() for p in folders]
    if extra is not None and (Path(extra) / MANIFEST).exists() and Path(extra).resolve() not in candidates:
        candidates.insert(0, Path(extra).resolve())
    for folder in candidates:
        name, k = folder.name, 2
        while name in found:
            name, k = f"{folder.name}-{k}", k + 1
        found[name] = folder
    return found


def register(checkpoints: dict[str, Path]) -> None:
    """The app's choices (replacing any earlier ones)."""
    _registry.clear()
    _registry.update(checkpoints)


def choices() -> dict[str, Path]:
    if not _registry:
        register(find_checkpoints())
    return dict(_registry)


def name_of(folder: str | Path) -> str:
    """The registered name of a checkpoint folder (its folder name when it is not registered)."""
    folder = Path(folder).resolve()
    return next((n for n, f in choices().items() if f == folder), folder.name)


def resolve(name_or_folder: str | Path) -> Path:
    """A registered name (or a registered folder's path, as server code passes it) -> its folder; anything else is
    refused with the names on offer (a ValueError that shows no server path)."""
    known = choices()
    key = str(name_or_folder or "")
    if key in known:
        return known[key]
    try:
        folder = Path(key).resolve()
    except (OSError, ValueError):
        folder = None
    if folder is not None and folder in known.values():
        return folder
    raise ValueError(f"unknown checkpoint {Path(key).name!r}: choose one of {', '.join(known) or 'none found'}")
