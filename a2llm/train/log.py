"""Training logs: one CSV row per epoch, appended (so a resumed run continues the same file)."""
from __future__ import annotations

import csv
from pathlib import Path


def append_csv(path: Path, row: dict) -> None:
    """Append ``row``; the header is written when the file is new."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
