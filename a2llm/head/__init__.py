"""Parametric head models: the human head, the procedural open head and real FLAME, behind one interface.

    from a2llm.head import load_head
    head = load_head("human")           # the app's default avatar (MakeHuman CC0 + ARKit units), female identity
    head = load_head("human-male")      # the same head, male identity (HUMAN_IDENTITIES)
    head = load_head("open")            # the procedural open head, checkpoints/open_head/open_head.npz
    head = load_head("flame")           # real FLAME from checkpoints/flame/ (see checkpoints/flame/README.md)
    verts = head.vertices(motion)       # [T, 58] -> [T, V, 3]
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from a2llm.head.base import LANDMARKS, REGIONS, HeadData, HeadModel

REPO_ROOT = Path(__file__).resolve().parents[2]
OPEN_HEAD_PATH = REPO_ROOT / "checkpoints" / "open_head" / "open_head.npz"
FLAME_DIR = REPO_ROOT / "checkpoints" / "flame"

#: Identities of the human head: "human" is the default one ("human-female").
HUMAN_IDENTITIES = ("female", "male")
HEAD_CHOICES = ("human", "human-male", "open", "flame")
#: The head the app, the renderer and desktop mode show unless told otherwise. (Training and the metrics' CLI
#: keep their own default, the open head the motion tokenizer was trained with.)
DEFAULT_HEAD = "human"


def human_identity(spec: str) -> str | None:
    """"human" -> the default identity, "human-NAME" -> NAME; None for any other spec."""
    if spec == "human":
        from a2llm.head.human import DEFAULT_IDENTITY

        return DEFAULT_IDENTITY
    if spec.startswith("human-") and not spec.endswith(".npz"):
        return spec[len("human-"):]
    return None


def load_head_data(spec: str | Path = "open") -> HeadData:
    """Resolve a head spec to its arrays.

    Args:
        spec: "human" / "human-<identity>" (the committed human head, checkpoints/human_head/), "open" (the
            committed procedural head), "flame" (real FLAME in checkpoints/flame/), a folder holding FLAME
            files, or a converted head ``.npz``.
    """
    spec_s = str(spec)
    identity = human_identity(spec_s)
    if identity is not None:
        from a2llm.head.human import load_human_data

        return load_human_data(identity)
    if spec_s == "open":
        if not OPEN_HEAD_PATH.exists():
            raise FileNotFoundError(
                f"open default head not found at {OPEN_HEAD_PATH}; regenerate it with "
                "`python -m a2llm.head.open_head --out checkpoints/open_head/open_head.npz`")
        return HeadData.load_npz(OPEN_HEAD_PATH)
    from a2llm.head import flame  # imported lazily: only real-FLAME users need it

    path = Path(spec_s)
    if path.suffix == ".npz" and path.is_file():
        return flame.load_flame_data(path) if flame.is_flame_npz(path) else HeadData.load_npz(path)

    if spec_s == "flame":
        return flame.load_flame_data(FLAME_DIR)
    if path.is_dir():
        return flame.load_flame_data(path)
    raise FileNotFoundError(f"unknown head {spec_s!r}: use one of {HEAD_CHOICES}, a FLAME folder or a head .npz")


@lru_cache(maxsize=8)
def _cached(spec: str) -> HeadModel:
    return HeadModel(load_head_data(spec))


def load_head(spec: str | Path = "open") -> HeadModel:
    """Load (and cache) a :class:`HeadModel`; see :func:`load_head_data` for ``spec``."""
    return _cached(str(spec))


__all__ = ["HeadData", "HeadModel", "load_head", "load_head_data", "REGIONS", "LANDMARKS", "HEAD_CHOICES",
           "DEFAULT_HEAD", "HUMAN_IDENTITIES", "human_identity", "OPEN_HEAD_PATH", "FLAME_DIR"]
