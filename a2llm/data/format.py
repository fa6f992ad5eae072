"""FLAME-QA on disk: sharded JSONL metadata + per-sample FLAC audio and NPZ motion (docs/DATA.md).

    DIR/
      dataset.json                      name, version, sample_rate, fps, emotions, splits -> shard list + counts
      <split>/shard-00000.jsonl         one JSON object per sample (texts, labels, context, file names, meta)
      <split>/shard-00000/<id>.q.flac   question audio (mono, sample_rate)
      <split>/shard-00000/<id>.r.flac   response audio
      <split>/shard-00000/<id>.npz      motion [T, 58] float32 (25 fps) and, when known, audio_tokens [T] int64

Metadata is small and read eagerly per split (100k samples ≈ 50 MB of JSON); arrays are read lazily
per item, so the dataset streams. Every file is written to a temporary name and renamed, and a shard's
JSONL line is written only after its files, so an interrupted writer never leaves a half sample.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from a2llm.motion.io import validate_motion

EMOTIONS = ("neutral", "happy", "sad", "surprised", "contemptuous", "curious")
SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


@dataclass
class Turn:
    """One earlier turn of the dialogue (text only): role is "human" or "assistant"."""

    role: str
    text: str


@dataclass
class FlameQASample:
    """One FLAME-QA sample.

    Attributes:
        id: unique id (file-name safe).
        question_text, question_audio: the user's question; audio float32 mono [Nq] at ``sample_rate``.
        response_text, response_audio: the avatar's answer; audio float32 mono [Nr].
        motion: [T, 58] float32 at 25 fps on the response audio's timeline (T = round(25 Nr / sr) ± 1).
        emotion: one of :data:`EMOTIONS` (the emotion of the response text).
        audio_tokens: [T] int64 25 Hz audio tokens of the response (phone frames at nano scale), or None.
        context: earlier turns of the dialogue, oldest first.
        high_dynamic: member of the high-dynamic subset (seed stage 3, affective tuning).
        source, split: provenance and split name.
        meta: free-form generation details (voice, rate, template id, ...).
    """

    id: str
    question_text: str
    question_audio: np.ndarray
    response_text: str
    response_audio: np.ndarray
    sample_rate: int
    motion: np.ndarray
    emotion: str
    audio_tokens: np.ndarray | None = None
    context: list[Turn] = field(default_factory=list)
    high_dynamic: bool = False
    source: str = "flame-qa"
    split: str = "train"
    meta: dict = field(default_factory=dict)

    @property
    def response_seconds(self) -> float:
        return len(self.response_audio) / self.sample_rate


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)            # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_flac(path: Path, audio: np.ndarray, sr: int) -> None:
    _atomic_write(path, lambda t: sf.write(t, np.clip(audio, -1, 1), sr, format="FLAC", subtype="PCM_16"))


def _check(sample: FlameQASample) -> None:
    if sample.emotion not in EMOTIONS:
        raise ValueError(f"sample {sample.id}: emotion {sample.emotion!r} is not one of {EMOTIONS}")
    if sample.split not in SPLITS:
        raise ValueError(f"sample {sample.id}: split {sample.split!r} is not one of {SPLITS}")
    if not sample.id or any(c in sample.id for c in "/\\ \n"):
        raise ValueError(f"sample id {sample.id!r} must be a non-empty file-name-safe string")
    validate_motion(sample.motion, name=f"sample {sample.id} motion")
    if sample.audio_tokens is not None and len(sample.audio_tokens) != len(sample.motion):
        raise ValueError(f"sample {sample.id}: {len(sample.audio_tokens)} audio tokens for {len(sample.motion)} "
                         "motion frames (both are 25 Hz and must match)")


class FlameQAWriter:
    """Append samples to a FLAME-QA folder, shard by shard; ``close()`` (or ``with``) writes dataset.json.

    Re-opening an existing folder continues it: ids already present are reported by :meth:`has`, so
    a generator can skip them and resume after a crash.
    """

    def __init__(self, root: str | Path, name: str = "flame-qa", sample_rate: int = 16000, shard_size: int = 500):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.name, self.sample_rate, self.shard_size = name, int(sample_rate), int(shard_size)
        self._counts: dict[str, dict[str, int]] = {}      # split -> shard name -> lines
        self._ids: set[str] = set()
        for split in SPLITS:
            for shard in sorted((self.root / split).glob("shard-*.jsonl")):
                lines = [json.loads(x) for x in shard.read_text().splitlines() if x.strip()]
                self._counts.setdefault(split, {})[shard.stem] = len(lines)
                self._ids.update(x["id"] for x in lines)

    def has(self, sample_id: str) -> bool:
        return sample_id in self._ids

    def _shard_for(self, split: str) -> str:
        shards = self._counts.setdefault(split, {})
        if not shards or shards[max(shards)] >= self.shard_size:
            shards[f"shard-{len(shards):05d}"] = 0
        return max(shards)

    def add(self, s: FlameQASample) -> None:
        """Write one sample (its files first, then its JSONL line)."""
        _check(s)
        if s.sample_rate != self.sample_rate:
            raise ValueError(f"sample {s.id}: sample_rate {s.sample_rate} != dataset's {self.sample_rate}")
        if s.id in self._ids:
            raise ValueError(f"sample id {s.id!r} already in {self.root}")
        shard = self._shard_for(s.split)
        folder = self.root / s.split / shard
        folder.mkdir(parents=True, exist_ok=True)
        _write_flac(folder / f"{s.id}.q.flac", s.question_audio, s.sample_rate)
        _write_flac(folder / f"{s.id}.r.flac", s.response_audio, s.sample_rate)
        arrays = {"motion": np.asarray(s.motion, np.float32)}
        if s.audio_tokens is not None:
            arrays["audio_tokens"] = np.asarray(s.audio_tokens, np.int64)
        def save_npz(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        _atomic_write(folder / f"{s.id}.npz", save_npz)
        record = {"id": s.id, "question_text": s.question_text, "response_text": s.response_text,
                  "emotion": s.emotion, "context": [asdict(t) for t in s.context], "high_dynamic": s.high_dynamic,
                  "source": s.source, "split": s.split, "num_frames": len(s.motion),
                  "response_seconds": round(s.response_seconds, 4), "meta": s.meta}
        with open(self.root / s.split / f"{shard}.jsonl", "a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._counts[s.split][shard] += 1
        self._ids.add(s.id)

    def close(self) -> Path:
        info = {"name": self.name, "format_version": FORMAT_VERSION, "sample_rate": self.sample_rate, "fps": 25,
                "emotions": list(EMOTIONS),
                "splits": {sp: {"shards": sorted(sh), "num_samples": sum(sh.values())}
                           for sp, sh in sorted(self._counts.items())}}
        path = self.root / "dataset.json"
        _atomic_write(path, lambda t: Path(t).write_text(json.dumps(info, indent=2)))
        return path

    def __enter__(self) -> "FlameQAWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FlameQADataset(Sequence):
    """Random-access view of one split (or all); arrays are loaded from disk on each access."""

    def __init__(self, root: str | Path, split: str | None = None):
        self.root = Path(root)
        info_path = self.root / "dataset.json"
        if not info_path.exists():
            raise FileNotFoundError(f"{self.root} is not a FLAME-QA folder (no dataset.json); "
                                    "generate one with `python -m a2llm.data.nano --out DIR --num N`")
        self.info = json.loads(info_path.read_text())
        if self.info.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{info_path}: format_version {self.info.get('format_version')} != {FORMAT_VERSION}")
        splits = [split] if split else list(self.info["splits"])
        unknown = [s for s in splits if s not in self.info["splits"]]
        if unknown:
            raise ValueError(f"split {unknown[0]!r} not in {self.root} (has {sorted(self.info['splits'])})")
        self.sample_rate = int(self.info["sample_rate"])
        self._records: list[tuple[dict, Path]] = []
        for sp in splits:
            for shard in self.info["splits"][sp]["shards"]:
                for line in (self.root / sp / f"{shard}.jsonl").read_text().splitlines():
                    if line.strip():
                        self._records.append((json.loads(line), self.root / sp / shard))

    def __len__(self) -> int:
        return len(self._records)

    def record(self, i: int) -> dict:
        """Metadata of item i without touching its audio or motion."""
        return self._records[i][0]

    def motion(self, i: int) -> np.ndarray:
        """Only the motion [T, 58] of item i (no audio decoded): what the motion tokenizer trains on."""
        rec, folder = self._records[i]
        with np.load(folder / f"{rec['id']}.npz", allow_pickle=False) as z:
            return z["motion"]

    def __getitem__(self, i: int) -> FlameQASample:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        rec, folder = self._records[i]
        q, sr_q = sf.read(folder / f"{rec['id']}.q.flac", dtype="float32")
        r, sr_r = sf.read(folder / f"{rec['id']}.r.flac", dtype="float32")
        with np.load(folder / f"{rec['id']}.npz", allow_pickle=False) as z:
            motion = z["motion"]
            tokens = z["audio_tokens"] if "audio_tokens" in z.files else None
        return FlameQASample(id=rec["id"], question_text=rec["question_text"], question_audio=q,
                             response_text=rec["response_text"], response_audio=r, sample_rate=sr_r, motion=motion,
                             emotion=rec["emotion"], audio_tokens=tokens,
                             context=[Turn(**t) for t in rec["context"]], high_dynamic=rec["high_dynamic"],
                             source=rec["source"], split=rec["split"], meta=rec["meta"])

    def __iter__(self) -> Iterator[FlameQASample]:
        for i in range(len(self)):
            yield self[i]


def load_flame_qa(root: str | Path, split: str | None = None) -> FlameQADataset:
    """Open a FLAME-QA folder; ``split`` is "train", "val", "test" or None for all."""
    return FlameQADataset(root, split)
