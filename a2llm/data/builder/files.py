"""Crash-safe file writing for the builder's artefacts.

Every artefact is written to a temporary file beside its destination, flushed to disk and moved over the
destination with ``os.replace``, which is atomic on POSIX file systems: a crash leaves the old file (or none)
or the new one, never half a file. Temporary names are ``.<name>.<random>.tmp`` (the pattern
:func:`a2llm.motion.io.save_motion` uses too), so :func:`remove_stale_temps` can sweep what a killed process
left behind.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

TEMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table, so a rename or a new file inside it survives a power loss."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file atomically through a callback.

    Args:
        path: destination; parent folders are created.
        write: called with a binary file object open on the temporary file.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def atomic_write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio as 16-bit PCM WAV, atomically.

    Args:
        path: destination ``.wav``.
        audio: [N] float samples in [-1, 1] (values beyond are clipped by the PCM conversion).
        sample_rate: samples per second.
    """
    import soundfile as sf  # imported here: only the audio stages need it

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio to write must be mono and non-empty with shape (N,), got {audio.shape}")
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), int(sample_rate), format="WAV", subtype="PCM_16")
    return atomic_write_bytes(path, buf.getvalue())


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporary files (``.*.tmp``) that an interrupted writer left in ``folder``.

    Only call this for a folder no other process is writing to: the runner calls it on one stage's folder
    of one item, which only the holder of that stage's lock writes to.

    Returns:
        The files removed.
    """
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
