"""Where the app writes its outputs: one folder per run under outputs/ (git-ignored), unique names."""
from __future__ import annotations

import uuid
from pathlib import Path

OUTPUT_ROOT = Path(__file__).resolve().parents[1] / "outputs"


def new_output(suffix: str, stem: str = "out") -> Path:
    """A fresh, not-yet-existing path like outputs/<stem>-<uuid><suffix>."""
    OUTPUT_ROOT.mkdir(parents=True, exist_ok=True)
    return OUTPUT_ROOT / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"
