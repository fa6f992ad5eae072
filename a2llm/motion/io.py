"""Motion files: validation, safe loading, atomic saving and frame-rate conversion.

The project's motion file (DESIGN.md, "Motion") is an ``.npz`` holding::

    motion       [T, 58] float32   layout in a2llm.motion.layout, 25 fps
    fps          int scalar         always 25
    audio        [N] float32        optional mono speech on the same timeline (frame f is at f/25 s)
    sample_rate  int scalar         required when audio is present

Files are read with ``allow_pickle=False`` only: an ``.npz`` may come from anywhere, and unpickling
can run arbitrary code.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from a2llm.motion.layout import FPS, GLOBAL, JAW, MOTION_DIM

#: Vertex count of the FLAME topology (FLAME 2020 / 2023).
FLAME_NUM_VERTICES = 5023

#: Rotation blocks of the motion layout; these are interpolated on SO(3), the rest linearly.
ROTATION_SLICES = (JAW, GLOBAL)

_NPY_MAGIC = b"\x93NUMPY"


class MotionFormatError(ValueError):
    """A motion, vertex or audio array (or the file holding it) is not in the expected format."""


@dataclass(frozen=True, eq=False)
class MotionClip:
    """A motion with its frame rate and optional speech.

    Attributes:
        motion: [T, 58] float32 motion (layout in :mod:`a2llm.motion.layout`).
        fps: frames per second (25 for every clip this module returns).
        audio: [N] float32 mono speech, or None.
        sample_rate: audio samples per second, or None when there is no audio.
    """

    motion: np.ndarray
    fps: int = FPS
    audio: np.ndarray | None = None
    sample_rate: int | None = None

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True, eq=False)
class VertexClip:
    """A mesh vertex sequence (not parameters) with its frame rate and optional speech.

    The renderer and metrics accept vertices directly, so peers that output meshes need no fitting.

    Attributes:
        vertices: [T, V, 3] float32 vertex positions (V = 5023 for FLAME topology).
        fps: frames per second (25 for every clip the importers return).
        audio: [N] float32 mono speech, or None.
        sample_rate: audio samples per second, or None when there is no audio.
    """

    vertices: np.ndarray
    fps: int = FPS
    audio: np.ndarray | None = None
    sample_rate: int | None = None

    @property
    def num_frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


# --------------------------------------------------------------------------- validation


def _numeric_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a real-valued (int/float) numpy array, or raise MotionFormatError."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise MotionFormatError(f"{name} cannot be read as a numeric array: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise MotionFormatError(
            f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def _to_finite_float32(arr: np.ndarray, name: str) -> np.ndarray:
    """Cast to contiguous float32 and reject NaN/inf, naming how many and the first frame (axis 0)."""
    with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf, reported below
        out = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        first = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))
        unit = "frame" if out.ndim > 1 else "sample"
        raise MotionFormatError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN, inf, or beyond float32 range); "
            f"the first is at {unit} {first}")
    return out


def _shape_hint(shape: tuple[int, ...]) -> str:
    """Suggest the right entry point for arrays that are recognisably something else."""
    if len(shape) == 3 and shape[-1] == 3:
        topo = "FLAME-topology " if shape[1] == FLAME_NUM_VERTICES else ""
        return (f"; this looks like a {topo}vertex sequence (T, V, 3), not motion parameters — "
                "load it with a2llm.motion.importers.import_motion(path), which returns a VertexClip "
                "that the renderer and metrics accept directly")
    if shape and shape[-1] == 106:
        return ("; this looks like ARTalk's 106-d motion (100 expression + 3 global + 3 jaw) — convert it "
                "with a2llm.motion.importers.import_motion(path, kind='artalk') or artalk_to_motion(array)")
    if len(shape) == 1 and shape[0] == MOTION_DIM:
        return "; this looks like a single frame — add the time axis with motion[None]"
    return ""


def check_motion_array(motion: Any, *, name: str = "motion") -> np.ndarray:
    """Validate a motion array's dtype, shape and values, without looking at its frame rate.

    Args:
        motion: array-like, expected [T, 58] with T >= 1, real and finite.
        name: what to call the array in error messages.

    Returns:
        [T, 58] float32 C-contiguous array (a copy only when a cast or layout change is needed).

    Raises:
        MotionFormatError: on a non-numeric dtype, a wrong shape, T == 0 or NaN/inf values.
    """
    arr = _numeric_array(motion, name)
    if arr.ndim != 2 or arr.shape[1] != MOTION_DIM:
        raise MotionFormatError(
            f"{name} must have shape (T, {MOTION_DIM}), got {arr.shape}{_shape_hint(arr.shape)}")
    if arr.shape[0] == 0:
        raise MotionFormatError(f"{name} has no frames (shape {arr.shape}); at least one frame is needed")
    return _to_finite_float32(arr, name)


def _integer_value(x: Any) -> int | None:
    """``x`` as an int when it is a real scalar with an integer value (25 or 25.0), else None."""
    arr = np.asarray(x)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf" or not np.isfinite(arr) or float(arr) != int(arr):
        return None
    return int(arr)


def _check_fps(fps: Any, name: str) -> float:
    """Return ``fps`` as a positive finite float, or raise MotionFormatError."""
    try:
        value = float(fps)
    except (TypeError, ValueError) as exc:
        raise MotionFormatError(f"{name} must be a number, got {fps!r}") from exc
    if not np.isfinite(value) or value <= 0:
        raise MotionFormatError(f"{name} must be a positive finite number, got {fps!r}")
    return value


def validate_motion(motion: Any, fps: float = FPS, *, name: str = "motion") -> np.ndarray:
    """Validate a motion in the project format: [T, 58] real, finite, at 25 fps.

    Args:
        motion: array-like, expected [T, 58].
        fps: the motion's frame rate; must be 25.
        name: what to call the array in error messages.

    Returns:
        [T, 58] float32 C-contiguous array.

    Raises:
        MotionFormatError: with what is wrong and what was expected.
    """
    out = check_motion_array(motion, name=name)
    if _check_fps(fps, f"{name} fps") != FPS:
        raise MotionFormatError(
            f"{name} is at {fps} fps, but the motion format is {FPS} fps; convert it with "
            f"a2llm.motion.io.resample_motion(motion, src_fps={fps}, dst_fps={FPS})")
    return out


def validate_audio(audio: Any, sample_rate: Any, *, name: str = "audio") -> tuple[np.ndarray, int]:
    """Validate mono speech and its sample rate.

    Args:
        audio: array-like [N], real and finite.
        sample_rate: positive integer samples per second.
        name: what to call the array in error messages.

    Returns:
        ([N] float32 contiguous audio, sample rate as int).
    """
    if sample_rate is None:
        raise MotionFormatError(f"{name} was given without a sample_rate; pass sample_rate (e.g. 16000)")
    sr = _integer_value(sample_rate)
    if sr is None or sr <= 0:
        raise MotionFormatError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    arr = _numeric_array(audio, name)
    if arr.ndim != 1:
        raise MotionFormatError(
            f"{name} must be mono with shape (N,), got {arr.shape}; mix channels down first "
            "(e.g. audio.mean(axis=channel_axis))")
    if arr.shape[0] == 0:
        raise MotionFormatError(f"{name} is empty (shape {arr.shape})")
    return _to_finite_float32(arr, name), sr


def validate_vertices(vertices: Any, *, allow_any_topology: bool = False,
                      name: str = "vertices") -> np.ndarray:
    """Validate a vertex sequence.

    Args:
        vertices: array-like [T, V, 3], real and finite, T >= 1.
        allow_any_topology: accept any V; otherwise V must be 5023 (FLAME topology), because the
            renderer's faces and the metrics' region indices are FLAME's.
        name: what to call the array in error messages.

    Returns:
        [T, V, 3] float32 C-contiguous array.
    """
    arr = _numeric_array(vertices, name)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise MotionFormatError(f"{name} must have shape (T, V, 3), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MotionFormatError(f"{name} has no frames or no vertices (shape {arr.shape})")
    if not allow_any_topology and arr.shape[1] != FLAME_NUM_VERTICES:
        raise MotionFormatError(
            f"{name} has {arr.shape[1]} vertices per frame; FLAME topology has {FLAME_NUM_VERTICES}. "
            "Pass allow_any_topology=True for another mesh (faces and region indices must then match it)")
    return _to_finite_float32(arr, name)


# --------------------------------------------------------------------------- files


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` without ever unpickling.

    Args:
        path: the archive.

    Returns:
        name -> array, all read into memory (the archive is closed on return).

    Raises:
        FileNotFoundError: the file does not exist.
        MotionFormatError: not an npz, a corrupt archive, or a member that needs pickle.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if path.is_dir():
        raise MotionFormatError(f"{path} is a folder, expected an .npz file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            is_npy = f.read(len(_NPY_MAGIC)) == _NPY_MAGIC
        hint = (" (it is a bare .npy array; use a2llm.motion.importers.import_motion for it)"
                if is_npy else "")
        raise MotionFormatError(f"{path} is not an .npz archive (not a zip file){hint}")
    arrays: dict[str, np.ndarray] = {}
    key = None  # the member being read, for error messages
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                arrays[key] = data[key]
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise MotionFormatError(
                f"{path} holds a pickled object array (member {key!r}); pickled data is refused because "
                "loading it can run arbitrary code. Save plain numeric arrays instead") from exc
        raise MotionFormatError(f"{path} has an unreadable member {key!r}: {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise MotionFormatError(f"{path} is a corrupt .npz archive: {exc}") from exc
    return arrays


def _int_scalar(arrays: dict[str, np.ndarray], key: str, where: str) -> int:
    """Read an integer-valued scalar entry (e.g. ``fps``), or raise MotionFormatError."""
    value = _integer_value(arrays[key])
    if value is None:
        raise MotionFormatError(f"{where}: {key!r} must be an integer scalar, got {arrays[key]!r}")
    return value


def load_motion(path: str | Path) -> MotionClip:
    """Load a motion file written by :func:`save_motion` (see the module docstring for the format).

    Args:
        path: the ``.npz`` file.

    Returns:
        MotionClip with [T, 58] float32 motion at 25 fps and the audio if the file has it.

    Raises:
        FileNotFoundError: the file does not exist.
        MotionFormatError: corrupt file, pickled content, missing keys, bad shapes or fps != 25.
    """
    arrays = load_npz(path)
    for key in ("motion", "fps"):
        if key not in arrays:
            raise MotionFormatError(
                f"{path} has no {key!r} array (keys present: {sorted(arrays)}); a motion file holds "
                "'motion' (T, 58) and 'fps'. Files from other systems go through "
                "a2llm.motion.importers.import_motion")
    fps = _int_scalar(arrays, "fps", str(path))
    if fps != FPS:
        raise MotionFormatError(
            f"{path} is at {fps} fps, but the motion format is {FPS} fps; "
            "a2llm.motion.importers.import_motion(path) reads it and resamples to 25 fps")
    motion = validate_motion(arrays["motion"], fps, name=f"{path}: motion")
    audio = sample_rate = None
    if "audio" in arrays:
        if "sample_rate" not in arrays:
            raise MotionFormatError(f"{path} has 'audio' but no 'sample_rate'")
        audio, sample_rate = validate_audio(arrays["audio"], arrays["sample_rate"], name=f"{path}: audio")
    return MotionClip(motion=motion, fps=fps, audio=audio, sample_rate=sample_rate)


def save_motion(path: str | Path, motion: Any, fps: int = FPS, audio: Any = None,
                sample_rate: int | None = None) -> Path:
    """Write a motion file atomically.

    The archive is written to a temporary file beside ``path`` and moved over it with ``os.replace``,
    so a crash leaves either the old file or the new one, never half a file.

    Args:
        path: destination (conventionally ``.npz``; the name is used as given). Parent folders are created.
        motion: [T, 58] motion at 25 fps.
        fps: must be 25 (resample other rates with :func:`resample_motion` first).
        audio: optional [N] mono speech.
        sample_rate: audio samples per second; required with ``audio``.

    Returns:
        The path written.
    """
    motion = validate_motion(motion, fps)
    arrays = {"motion": motion, "fps": np.asarray(FPS, dtype=np.int64)}
    if audio is not None:
        audio, sample_rate = validate_audio(audio, sample_rate)
        arrays["audio"] = audio
        arrays["sample_rate"] = np.asarray(sample_rate, dtype=np.int64)
    elif sample_rate is not None:
        raise MotionFormatError("sample_rate was given without audio; pass both or neither")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- frame rate


def _frame_positions(num_frames: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """Source-frame positions (fractional indices) of the resampled frames.

    Output frame j sits at time j / dst_fps, i.e. at source index j * src_fps / dst_fps. The count is
    round(T * dst / src) (halves round up, at least 1); positions past the last source frame hold it.
    """
    num_out = max(1, int(np.floor(num_frames * dst_fps / src_fps + 0.5)))
    return np.minimum(np.arange(num_out) * (src_fps / dst_fps), num_frames - 1)


def _lerp(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``x`` [T, ...] along axis 0 at fractional indices ``pos`` [T']."""
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[0] - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1.0 - w) * x[lo] + w * x[hi]


def resample_linear(x: Any, src_fps: float, dst_fps: float = FPS) -> np.ndarray:
    """Resample any per-frame array linearly in time (used for vertices; motion uses :func:`resample_motion`).

    Args:
        x: [T, ...] real array, T >= 1.
        src_fps: its frame rate.
        dst_fps: the wanted frame rate.

    Returns:
        [T', ...] float32 with T' = round(T * dst_fps / src_fps).
    """
    src = _check_fps(src_fps, "src_fps")
    dst = _check_fps(dst_fps, "dst_fps")
    arr = _numeric_array(x, "array")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise MotionFormatError(f"cannot resample an array with no frames (shape {arr.shape})")
    pos = _frame_positions(arr.shape[0], src, dst)
    return np.ascontiguousarray(_lerp(arr.astype(np.float64), pos), dtype=np.float32)


def resample_motion(motion: Any, src_fps: float, dst_fps: float = FPS, *, name: str = "motion") -> np.ndarray:
    """Change a motion's frame rate.

    Expression and eyelids are interpolated linearly; the jaw and global rotations (axis-angle) are
    interpolated on the rotation group with scipy's Slerp, because averaging axis-angle vectors is not
    a rotation between the two (it is only close for small, co-axial rotations). Rotations come back
    as scipy's rotation vectors, angle in [0, pi]: a source angle beyond pi is returned as the
    equivalent shorter rotation.

    Args:
        motion: [T, 58] motion at ``src_fps``.
        src_fps: its frame rate.
        dst_fps: the wanted frame rate (default 25).
        name: what to call the array in error messages.

    Returns:
        [T', 58] float32 with T' = round(T * dst_fps / src_fps); output frame j is at time j / dst_fps.
    """
    arr = check_motion_array(motion, name=name)
    src = _check_fps(src_fps, "src_fps")
    dst = _check_fps(dst_fps, "dst_fps")
    if src == dst:
        return arr.copy()
    pos = _frame_positions(arr.shape[0], src, dst)
    src64 = arr.astype(np.float64)
    out = _lerp(src64, pos)
    if arr.shape[0] > 1:  # Slerp needs two key rotations; a single frame is just repeated by _lerp
        key_times = np.arange(arr.shape[0], dtype=np.float64)
        for sl in ROTATION_SLICES:
            slerp = Slerp(key_times, Rotation.from_rotvec(src64[:, sl]))
            out[:, sl] = slerp(pos).as_rotvec()
    return np.ascontiguousarray(out, dtype=np.float32)
