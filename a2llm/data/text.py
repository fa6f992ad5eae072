"""The form in which answers are compared (torch-free: the FLAME-QA-nano world and the generator share it)."""
from __future__ import annotations

import unicodedata


def normalise_text(text: str) -> str:
    """Compatibility forms folded (NFKC: "A²" -> "A2", as the nano tokenizer itself normalises text), then lower
    case, letters, digits and single spaces only: the form answer accuracy compares."""
    out = "".join(c.lower() if c.isalnum() else " " for c in unicodedata.normalize("NFKC", text))
    return " ".join(out.split())
