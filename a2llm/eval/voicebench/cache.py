"""Append-only JSONL caches, so an interrupted run resumes without redoing finished items.

One record per line, keyed by ``id``; every record is flushed and fsync'ed as soon as it is written, so after a
crash or Ctrl-C at most the line being written is lost. A torn last line (no newline, or not JSON) is cut off
when the file is next opened; a later record for the same id replaces an earlier one.

Output folder of one model::

    OUT/<model>/run.json                          what produced the answers (checkpoint, decoding settings)
    OUT/<model>/answers/<subset>.jsonl            {"id", "question", "answer", ...}
    OUT/<model>/judgements/<subset>.<tag>.jsonl   {"id", "answer", "score", "raw"}   (tag: judge or "match")
    OUT/<model>/scores.json                       the last run's table row
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path


class JsonlCache:
    """Records of one JSONL file, by id; :meth:`add` appends one and makes it durable before returning."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good = 0                                   # bytes of complete, parsable lines
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError(f"{self.path}: a line without an 'id' ({line[:80]!r}); not a cache of this harness")
            self.records[str(record["id"])] = record
            good += len(line)
        if good < len(raw):                        # a torn write at the end: drop it before appending
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def add(self, record: dict) -> None:
        """Append ``record`` (it must have an ``id``) and flush it to disk."""
        if "id" not in record:
            raise ValueError("a cache record needs an 'id'")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[str(record["id"])] = record


def safe_tag(tag: str) -> str:
    """``tag`` usable in a file name (a judge's name may hold ``/`` or ``:``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tag).strip("_") or "judge"


class RunFolder:
    """One model's output folder (layout in the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def answers(self, subset: str) -> JsonlCache:
        return JsonlCache(self.root / "answers" / f"{subset}.jsonl")

    def judgements(self, subset: str, tag: str) -> JsonlCache:
        return JsonlCache(self.root / "judgements" / f"{subset}.{safe_tag(tag)}.jsonl")

    def claim(self, settings: dict) -> None:
        """Record what produces this folder's answers; ValueError when it already holds another run's answers."""
        path = self.root / "run.json"
        if path.exists():
            old = json.loads(path.read_text())
            if old != settings:
                diff = {k: (old.get(k), settings.get(k)) for k in set(old) | set(settings) if old.get(k) != settings.get(k)}
                raise ValueError(f"{self.root} holds answers of another run (differs in {diff}, as (cached, now)): "
                                 "pass another --out, or delete the folder to start over")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")

    def save_scores(self, row: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "scores.json").write_text(json.dumps(row, indent=2, ensure_ascii=False) + "\n")
