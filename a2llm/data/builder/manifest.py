"""The builder's manifest: a folder that lists the items and remembers what each stage made of them.

Layout of a manifest folder::

    manifest.jsonl                 one line per item: {"id", "source", "kind", "added", "meta"}
    stages/<stage>.jsonl           append-only log of that stage's results, one line per attempt:
                                   {"id", "stage", "status": "done"|"failed", "output", "error", "time", "seconds"}
    stages/<stage>.shard-I-of-N.jsonl   the same, written by shard I of N (``--shard I/N``)
    stages/<stage>*.lock           lock files that keep two runners off the same items
    items/<id>/<stage>/...         the artefacts a stage wrote for an item (wav, json, npz)

The state of an item at a stage is the newest line for it in that stage's logs (by ``time``; later lines win
ties); no line means "pending". Logs are only ever appended to, one fsynced line per item, so a crash loses at
most the item being processed; a torn last line (the process died mid-write) is skipped with a warning when
the logs are replayed. ``manifest.jsonl`` is written only by ``init``.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from a2llm.data.builder.files import atomic_write_bytes, fsync_dir

MANIFEST_FILE = "manifest.jsonl"
STAGES_DIR = "stages"
ITEMS_DIR = "items"

AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac"})
VIDEO_EXTS = frozenset({".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"})

Status = Literal["done", "failed", "pending"]


class ManifestError(ValueError):
    """A manifest folder or one of its files is missing or malformed."""


class StageBusyError(RuntimeError):
    """Another process holds the lock of the stage (or shard) this runner wanted."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Item:
    """One input of the manifest.

    Attributes:
        id: stable, file-system-safe identifier (``<stem>-<8 hex of the source path's sha1>``).
        source: absolute path of the raw audio or video file.
        kind: ``"audio"`` or ``"video"`` (from the file extension).
        added: when ``init`` listed it (ISO 8601, UTC).
        meta: free-form extra fields kept from the manifest line (speaker, corpus, ...).
    """

    id: str
    source: Path
    kind: str
    added: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": str(self.source), "kind": self.kind, "added": self.added,
                "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], where: str) -> Item:
        for key in ("id", "source", "kind"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ManifestError(f"{where}: field {key!r} must be a non-empty string, got {d.get(key)!r}")
        if d["kind"] not in ("audio", "video"):
            raise ManifestError(f"{where}: kind must be 'audio' or 'video', got {d['kind']!r}")
        return cls(id=d["id"], source=Path(d["source"]), kind=d["kind"], added=str(d.get("added", "")),
                   meta=dict(d.get("meta") or {}))


@dataclass(frozen=True)
class StageResult:
    """One line of a stage log: the outcome of one attempt of one stage on one item.

    Attributes:
        id: the item.
        stage: the stage name.
        status: ``"done"`` or ``"failed"``.
        output: what the stage returned (done), or details of the failure (failed; e.g. the raw LLM text).
        error: the error message of a failure, else None.
        time: when the line was written (seconds since the epoch).
        seconds: how long the attempt took.
    """

    id: str
    stage: str
    status: Literal["done", "failed"]
    output: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    time: float = 0.0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "stage": self.stage, "status": self.status, "output": dict(self.output),
                "error": self.error, "time": self.time, "seconds": self.seconds}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StageResult:
        if d.get("status") not in ("done", "failed") or not isinstance(d.get("id"), str):
            raise ValueError(f"not a stage result line: {d!r}")
        return cls(id=d["id"], stage=str(d.get("stage", "")), status=d["status"], output=dict(d.get("output") or {}),
                   error=d.get("error"), time=float(d.get("time", 0.0)), seconds=float(d.get("seconds", 0.0)))


@dataclass(frozen=True)
class Record:
    """An item together with the results of every stage so far: what a stage's ``process`` receives.

    Attributes:
        item: the manifest entry.
        root: the manifest folder (artefact paths in outputs are relative to it).
        results: stage name -> newest result for this item (absent = pending).
    """

    item: Item
    root: Path
    results: Mapping[str, StageResult]

    @property
    def id(self) -> str:
        return self.item.id

    @property
    def source(self) -> Path:
        return self.item.source

    @property
    def kind(self) -> str:
        return self.item.kind

    def status(self, stage: str) -> Status:
        """``"done"``, ``"failed"`` or ``"pending"`` for ``stage``."""
        result = self.results.get(stage)
        return result.status if result is not None else "pending"

    def output(self, stage: str) -> Mapping[str, Any]:
        """The output of a stage that is done for this item.

        Raises:
            KeyError: the stage is not done for this item (the message says its status).
        """
        result = self.results.get(stage)
        if result is None or result.status != "done":
            raise KeyError(f"item {self.id}: stage {stage!r} is {self.status(stage)}, not done; run it first")
        return result.output

    def path(self, relative: str) -> Path:
        """An artefact path from a stage output, resolved against the manifest folder."""
        return self.root / relative

    def relpath(self, path: Path) -> str:
        """``path`` relative to the manifest folder, as stage outputs store it (keeps the folder movable)."""
        return Path(os.path.relpath(path, self.root)).as_posix()


# --------------------------------------------------------------------------- ids and inputs


def item_id(source: Path) -> str:
    """Stable id of a source file: its sanitised stem plus 8 hex digits of its absolute path's sha1.

    The hash keeps ids unique when folders hold files of the same name; the stem keeps them readable.
    """
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", source.stem).strip("_")[:40] or "item"
    digest = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def media_kind(path: Path) -> str | None:
    """``"audio"``, ``"video"`` or None (not a supported extension)."""
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in AUDIO_EXTS:
        return "audio"
    return None


def find_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Expand files and folders into (absolute path, kind), folders searched recursively and sorted.

    Raises:
        FileNotFoundError: an input does not exist.
        ManifestError: a file given by name has an unsupported extension.
    """
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        path = Path(raw).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"input not found: {raw}")
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                kind = media_kind(p)
                if kind is not None and p.is_file() and not p.name.startswith("."):
                    found.append((p, kind))
            continue
        kind = media_kind(path)
        if kind is None:
            raise ManifestError(
                f"{raw}: unsupported file type {path.suffix!r}; expected audio "
                f"({', '.join(sorted(AUDIO_EXTS))}) or video ({', '.join(sorted(VIDEO_EXTS))})")
        found.append((path, kind))
    return found


# --------------------------------------------------------------------------- logs


def _json_default(obj: Any) -> Any:
    """Let stage outputs hold numpy scalars and arrays (converted to plain JSON numbers and lists)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"stage output holds a {type(obj).__name__}, which is not JSON-serialisable")


def encode_result(result: StageResult) -> bytes:
    """One log line (UTF-8, newline-terminated); raises TypeError for outputs JSON cannot hold."""
    return (json.dumps(result.to_json(), ensure_ascii=False, default=_json_default, allow_nan=True) + "\n").encode()


def log_name(stage: str, shard: tuple[int, int] = (0, 1)) -> str:
    """File name of a stage's log for ``shard`` = (index, count)."""
    index, count = shard
    return f"{stage}.jsonl" if count == 1 else f"{stage}.shard-{index}-of-{count}.jsonl"


def read_log(path: Path) -> tuple[list[StageResult], int]:
    """Parse a stage log.

    Returns:
        (results in file order, number of unreadable lines skipped). An unreadable line is what a process
        killed mid-write leaves; the item it described is simply processed again.
    """
    results: list[StageResult] = []
    bad = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                results.append(StageResult.from_json(json.loads(line)))
            except (ValueError, UnicodeDecodeError):
                bad += 1
    return results, bad


class StageLog:
    """Appends results to one stage log, one fsynced line each, under the stage's lock.

    Use :meth:`Manifest.open_log`, which takes the locks.
    """

    def __init__(self, path: Path, file: IO[bytes]):
        self.path = path
        self._file = file

    def append(self, result: StageResult) -> None:
        """Write one result durably: the line is on disk when this returns."""
        line = encode_result(result)  # encode first: a bad output must not leave half a line
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())


def _lock(path: Path, mode: int, what: str) -> IO[bytes]:
    """Open ``path`` and take a non-blocking flock on it, or raise StageBusyError."""
    f = open(path, "ab")
    try:
        fcntl.flock(f.fileno(), mode | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise StageBusyError(
            f"another process is running {what} on this manifest (lock {path} is held); wait for it to end, "
            "or run other shards with --shard I/N") from None
    return f


# --------------------------------------------------------------------------- manifest


class Manifest:
    """A manifest folder: its items and the replayed state of every stage.

    Args:
        root: the folder; it must hold ``manifest.jsonl`` (create one with :meth:`init`).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        path = self.root / MANIFEST_FILE
        if not path.is_file():
            raise ManifestError(
                f"{self.root} is not a manifest folder (no {MANIFEST_FILE}); create one with "
                "`python -m a2llm.data.builder init --manifest DIR --inputs FILES_OR_DIR`")
        self.items: list[Item] = self._read_items(path)

    @staticmethod
    def _read_items(path: Path) -> list[Item]:
        items: list[Item] = []
        seen: set[str] = set()
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    item = Item.from_json(json.loads(line), where)
                except json.JSONDecodeError as exc:
                    raise ManifestError(f"{where}: not valid JSON ({exc})") from exc
                if item.id in seen:
                    raise ManifestError(f"{where}: duplicate item id {item.id!r}")
                seen.add(item.id)
                items.append(item)
        return items

    # ----------------------------------------------------------------- creation

    @classmethod
    def init(cls, root: str | Path, inputs: Iterable[str | Path]) -> tuple[Manifest, list[Item]]:
        """Create a manifest folder, or add new inputs to an existing one.

        Sources already listed are skipped, so running ``init`` again over a grown folder adds only the new
        files. The manifest file is rewritten atomically (``init`` is the only writer).

        Args:
            root: the manifest folder (created if missing).
            inputs: audio/video files and folders (searched recursively).

        Returns:
            (the manifest, the items added by this call).
        """
        root = Path(root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        path = root / MANIFEST_FILE
        existing = cls._read_items(path) if path.is_file() else []
        known_sources = {it.source for it in existing}
        known_ids = {it.id for it in existing}
        added: list[Item] = []
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for source, kind in find_inputs(inputs):
            if source in known_sources:
                continue
            item = Item(id=item_id(source), source=source, kind=kind, added=stamp)
            if item.id in known_ids:  # two paths with the same stem and sha1 prefix: vanishingly rare
                raise ManifestError(f"id collision for {source}: {item.id!r} is already used")
            known_sources.add(source)
            known_ids.add(item.id)
            added.append(item)
        lines = [json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in existing + added]
        atomic_write_bytes(path, "".join(lines).encode("utf-8"))
        (root / STAGES_DIR).mkdir(exist_ok=True)
        (root / ITEMS_DIR).mkdir(exist_ok=True)
        return cls(root), added

    # ----------------------------------------------------------------- state

    def log_paths(self, stage: str) -> list[Path]:
        """Every log file of ``stage`` (unsharded and sharded)."""
        folder = self.root / STAGES_DIR
        paths = [folder / f"{stage}.jsonl"] + sorted(folder.glob(f"{stage}.shard-*-of-*.jsonl"))
        return [p for p in paths if p.is_file()]

    def results(self, stage: str) -> dict[str, StageResult]:
        """Replay ``stage``'s logs: item id -> newest result. Unreadable lines are skipped with a warning."""
        newest: dict[str, StageResult] = {}
        for path in self.log_paths(stage):
            entries, bad = read_log(path)
            if bad:
                warnings.warn(f"{path}: skipped {bad} unreadable line(s) (a run was interrupted mid-write); "
                              "those items will be processed again", RuntimeWarning, stacklevel=2)
            for r in entries:
                old = newest.get(r.id)
                if old is None or r.time >= old.time:
                    newest[r.id] = r
        return newest

    def records(self, stages: Iterable[str]) -> list[Record]:
        """Every item with the replayed results of ``stages``, in manifest order."""
        per_stage = {s: self.results(s) for s in stages}
        return [Record(item=it, root=self.root,
                       results={s: res[it.id] for s, res in per_stage.items() if it.id in res})
                for it in self.items]

    def known_stages(self) -> list[str]:
        """Names of the stages that have a log in this manifest."""
        names = {p.name.split(".")[0] for p in (self.root / STAGES_DIR).glob("*.jsonl")}
        return sorted(names)

    def stage_dir(self, item: str, stage: str) -> Path:
        """Where ``stage`` keeps its artefacts for ``item`` (not created)."""
        return self.root / ITEMS_DIR / item / stage

    # ----------------------------------------------------------------- writing

    @contextmanager
    def open_log(self, stage: str, shard: tuple[int, int] = (0, 1)) -> Iterator[StageLog]:
        """Lock ``stage`` (or one shard of it) and open its log for appending.

        An unsharded run locks the whole stage exclusively; a sharded run holds the stage lock shared and
        its shard's lock exclusively, so shards run side by side but never next to an unsharded run.

        Raises:
            StageBusyError: another process holds a conflicting lock.
        """
        index, count = shard
        folder = self.root / STAGES_DIR
        folder.mkdir(exist_ok=True)
        locks = [_lock(folder / f"{stage}.lock", fcntl.LOCK_EX if count == 1 else fcntl.LOCK_SH, f"stage {stage!r}")]
        try:
            if count > 1:
                locks.append(_lock(folder / f"{stage}.shard-{index}-of-{count}.lock", fcntl.LOCK_EX,
                                   f"shard {index}/{count} of stage {stage!r}"))
            path = folder / log_name(stage, shard)
            is_new = not path.exists()
            with open(path, "ab") as f:
                if is_new:
                    fsync_dir(folder)
                elif f.tell() > 0:
                    with open(path, "rb") as r:  # a torn last line must not swallow the next one
                        r.seek(-1, os.SEEK_END)
                        if r.read(1) != b"\n":
                            f.write(b"\n")
                            f.flush()
                yield StageLog(path, f)
        finally:
            for lock in reversed(locks):
                lock.close()  # closing the file releases its flock
