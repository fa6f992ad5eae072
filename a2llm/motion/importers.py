"""Importers: peers' outputs -> the project's motion ([T, 58] float32 at 25 fps) or vertex sequences.

Kinds (the keys of :data:`IMPORTERS`) and the layouts they read:

``a2llm``
    This project's own file (``motion`` (T, 58) + ``fps``, optional ``audio``/``sample_rate``) at any
    frame rate, or a bare (T, 58) array. Unlike :func:`a2llm.motion.io.load_motion`, other rates are
    resampled to 25 fps instead of refused.
``artalk``
    ARTalk's 106-d motion per frame: ``[0:100]`` FLAME expression, ``[100:103]`` global rotation,
    ``[103:106]`` jaw (axis-angle). ARTalk saves it with ``torch.save`` as a (T, 106) tensor (``.pt``);
    ``.npy``, and ``.npz`` with key ``motion`` or a single array, are read too.
``diffposetalk``
    ``.npz`` with ``exp`` (T, 50) and ``pose`` (T, 6) = [global rotation (3), jaw (3)] axis-angle, or
    ``pose`` (T, 3) = jaw only; ``shape`` (identity) is ignored.
``smirk``
    SMIRK encoder outputs: ``expression_params`` (50), ``pose_params`` (3, global rotation),
    ``jaw_params`` (3), ``eyelid_params`` (2: left, right; optional, else open); ``shape_params`` and
    ``cam`` ignored. Either a folder of per-frame ``.npz`` files (each field (50,) or (1, 50)), sorted
    naturally by the numbers in their names, or one ``.npz`` with the fields stacked (T, ...).
``vertices``
    FLAME-topology vertex sequences (T, 5023, 3) as ``.npy`` or ``.npz`` (key ``vertices`` or
    ``verts``). Not parameters: these come back as a :class:`~a2llm.motion.io.VertexClip`.

Every importer validates its result and, when the source frame rate differs from 25 fps, resamples
(rotations with Slerp, see :func:`~a2llm.motion.io.resample_motion`). The source rate is the ``fps``
argument, else the file's own ``fps`` entry, else 25 (ARTalk and DiffPoseTalk both run at 25 fps;
SMIRK runs per video frame, so pass the video's rate for it).

Files are read without ever unpickling: ``np.load(allow_pickle=False)``, ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from a2llm.motion.io import (
    MotionClip,
    MotionFormatError,
    VertexClip,
    load_npz,
    resample_linear,
    resample_motion,
    validate_audio,
    validate_motion,
    validate_vertices,
)
from a2llm.motion.layout import EXPR, EYELIDS, FPS, GLOBAL, JAW, MOTION_DIM, NUM_EXPR

Clip = MotionClip | VertexClip

#: Keys that describe a clip rather than hold its frames.
_META_KEYS = ("fps", "audio", "sample_rate")
_VERTEX_KEYS = ("vertices", "verts")
_SMIRK_KEYS = ("expression_params", "pose_params", "jaw_params", "eyelid_params")

# --------------------------------------------------------------------------- reading


def natural_key(name: str) -> list[str | int]:
    """Sort key that orders digit runs by value: ``frame_2`` before ``frame_10``."""
    # re.split with a capture group alternates text, digits, text, ...: the types line up across names.
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _load_npy(path: Path) -> dict[str, np.ndarray]:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise MotionFormatError(
                f"{path} holds pickled data, which is refused because loading it can run arbitrary code") from exc
        raise MotionFormatError(f"{path} is not a readable .npy array: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise MotionFormatError(f"{path} is not a readable .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray):  # np.load returns an NpzFile for zip content
        arr.close()
        raise MotionFormatError(f"{path} is an .npz archive named .npy; rename it to .npz")
    return {"arr_0": arr}


def _tensor_to_numpy(t: Any) -> np.ndarray:
    t = t.detach().cpu()
    return (t.float() if t.is_floating_point() else t).numpy()  # numpy has no bfloat16/half for all ops


def _load_torch(path: Path) -> dict[str, np.ndarray]:
    import torch  # only this path needs it; importing torch is slow

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise MotionFormatError(
            f"{path} could not be loaded with torch.load(weights_only=True) (only tensors and plain "
            f"containers are accepted; arbitrary pickled objects are refused): {exc}") from exc
    if isinstance(obj, torch.Tensor):
        return {"arr_0": _tensor_to_numpy(obj)}
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in obj.items()):
        return {k: _tensor_to_numpy(v) for k, v in obj.items()}
    raise MotionFormatError(
        f"{path} holds a {type(obj).__name__}; expected a tensor or a dict of named tensors")


def _read_frame_folder(folder: Path) -> dict[str, np.ndarray]:
    """Stack a folder of per-frame ``.npz`` files (natural order) into arrays [T, ...]."""
    files = sorted(folder.glob("*.npz"), key=lambda p: natural_key(p.name))
    if not files:
        raise MotionFormatError(f"{folder} holds no .npz files; expected one per frame")
    frames = [load_npz(f) for f in files]
    keys = list(frames[0])
    stacked: dict[str, np.ndarray] = {}
    for key in keys:
        shape = frames[0][key].shape
        for f, frame in zip(files, frames):
            if key not in frame:
                raise MotionFormatError(f"{f} lacks {key!r}, which {files[0].name} has (keys: {sorted(frame)})")
            if frame[key].shape != shape:
                raise MotionFormatError(
                    f"{f}: {key!r} has shape {frame[key].shape}, but {files[0].name} has {shape}")
        stacked[key] = np.stack([frame[key] for frame in frames])
    return stacked


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read a peer's output as named arrays, without unpickling.

    Args:
        path: a folder of per-frame ``.npz`` files, or an ``.npz``, ``.npy``, ``.pt`` or ``.pth`` file.

    Returns:
        name -> array. A bare array (``.npy`` or a single tensor) is named ``arr_0``, as ``np.savez``
        names positional arrays; a folder's frames are stacked along a new first axis.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if path.is_dir():
        return _read_frame_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".npy":
        return _load_npy(path)
    if suffix in (".pt", ".pth"):
        return _load_torch(path)
    raise MotionFormatError(f"{path}: unsupported file type {suffix!r}; expected .npz, .npy, .pt/.pth or a folder")


# --------------------------------------------------------------------------- detection


def _frame_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k not in _META_KEYS}


def _main_array(arrays: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """The ``motion`` array, or the only non-metadata array, or raise."""
    if "motion" in arrays:
        return arrays["motion"]
    frames = _frame_arrays(arrays)
    if len(frames) == 1:
        return next(iter(frames.values()))
    raise MotionFormatError(
        f"{where}: expected a 'motion' array or a single array, found keys {sorted(arrays)}")


def detect_kind(arrays: Mapping[str, np.ndarray], *, where: str = "input") -> str:
    """Tell which kind of output a set of arrays is. Rules, first match wins:

    1. keys ``exp`` and ``pose``                         -> ``diffposetalk``
    2. key ``expression_params``                         -> ``smirk``
    3. key ``vertices`` or ``verts``                     -> ``vertices``
    4. otherwise the ``motion`` array, or the only array besides fps/audio/sample_rate, by shape:
       (T, 106) -> ``artalk``; (T, 58) -> ``a2llm``; (T, V, 3) -> ``vertices``.

    Args:
        arrays: as returned by :func:`read_arrays`.
        where: what to call the input in error messages (usually its path).

    Raises:
        MotionFormatError: when no rule matches; the message lists the keys and shapes seen.
    """
    if "exp" in arrays and "pose" in arrays:
        return "diffposetalk"
    if "expression_params" in arrays:
        return "smirk"
    if any(k in arrays for k in _VERTEX_KEYS):
        return "vertices"
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    try:
        shape = _main_array(arrays, where).shape
    except MotionFormatError:
        shape = None
    if shape is not None and len(shape) == 2 and shape[1] == 106:
        return "artalk"
    if shape is not None and len(shape) == 2 and shape[1] == MOTION_DIM:
        return "a2llm"
    if shape is not None and len(shape) == 3 and shape[2] == 3:
        return "vertices"
    raise MotionFormatError(
        f"{where}: cannot tell what this is (arrays: {shapes}); known kinds: {sorted(IMPORTERS)}. "
        "Pass kind= explicitly if the layout is one of them")


# --------------------------------------------------------------------------- array converters


def _matrix(x: Any, widths: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` as a float64 [T, W] matrix with W in ``widths``, or raise naming what was expected."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise MotionFormatError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] not in widths:
        expected = " or ".join(f"(T, {w})" for w in widths)
        raise MotionFormatError(f"{name} must have shape {expected}, got {arr.shape}")
    return arr.astype(np.float64)


def _same_length(where: str, **fields: np.ndarray) -> int:
    lengths = {k: v.shape[0] for k, v in fields.items()}
    if len(set(lengths.values())) != 1:
        raise MotionFormatError(f"{where}: fields disagree on the number of frames: {lengths}")
    return next(iter(lengths.values()))


def artalk_to_motion(motion106: Any) -> np.ndarray:
    """ARTalk's 106-d frames -> [T, 58].

    Args:
        motion106: [T, 106] = expression [0:100], global rotation [100:103], jaw [103:106].

    Returns:
        [T, 58] float64 (unvalidated values); eyelids 0 (open): ARTalk drives blinks through expression.
    """
    src = _matrix(motion106, (106,), "ARTalk motion")
    out = np.zeros((src.shape[0], MOTION_DIM))
    # FLAME's expression space is a PCA basis with components ordered by explained variance, so the
    # first 50 of ARTalk's 100 coefficients are the 50 most significant ones (what n_exp=50 models use).
    out[:, EXPR] = src[:, :NUM_EXPR]
    out[:, GLOBAL] = src[:, 100:103]
    out[:, JAW] = src[:, 103:106]
    return out


def diffposetalk_to_motion(exp: Any, pose: Any, *, where: str = "DiffPoseTalk") -> np.ndarray:
    """DiffPoseTalk coefficients -> [T, 58].

    Args:
        exp: [T, 50] FLAME expression.
        pose: [T, 6] axis-angle with the head (global) rotation first and the jaw second, as
            DiffPoseTalk's "pose" is laid out; or [T, 3], the jaw alone, as some releases store it
            (the head then stays still).
        where: what to call the input in error messages.

    Returns:
        [T, 58] float64; eyelids 0 (open).
    """
    exp = _matrix(exp, (NUM_EXPR,), f"{where}: 'exp'")
    pose = _matrix(pose, (6, 3), f"{where}: 'pose'")
    out = np.zeros((_same_length(where, exp=exp, pose=pose), MOTION_DIM))
    out[:, EXPR] = exp
    if pose.shape[1] == 6:
        out[:, GLOBAL] = pose[:, :3]
        out[:, JAW] = pose[:, 3:]
    else:
        out[:, JAW] = pose
    return out


def _per_frame(x: Any) -> Any:
    """Drop the singleton batch axis that stacked per-frame SMIRK outputs carry: (T, 1, D) -> (T, D)."""
    arr = np.asarray(x)
    return arr[:, 0] if arr.ndim == 3 and arr.shape[1] == 1 else arr


def smirk_to_motion(expression: Any, pose: Any, jaw: Any, eyelid: Any = None, *,
                    where: str = "SMIRK") -> np.ndarray:
    """Stacked SMIRK parameters -> [T, 58].

    Args:
        expression: [T, 50] (or [T, 1, 50]) ``expression_params``.
        pose: [T, 3] ``pose_params``, the global head rotation (axis-angle).
        jaw: [T, 3] ``jaw_params`` (axis-angle).
        eyelid: [T, 2] ``eyelid_params`` (left, right; 0 open .. 1 closed), or None for open eyes.
        where: what to call the input in error messages.

    Returns:
        [T, 58] float64.
    """
    fields = {
        "expression_params": _matrix(_per_frame(expression), (NUM_EXPR,), f"{where}: 'expression_params'"),
        "pose_params": _matrix(_per_frame(pose), (3,), f"{where}: 'pose_params'"),
        "jaw_params": _matrix(_per_frame(jaw), (3,), f"{where}: 'jaw_params'"),
    }
    if eyelid is not None:
        fields["eyelid_params"] = _matrix(_per_frame(eyelid), (2,), f"{where}: 'eyelid_params'")
    out = np.zeros((_same_length(where, **fields), MOTION_DIM))
    out[:, EXPR] = fields["expression_params"]
    out[:, GLOBAL] = fields["pose_params"]
    out[:, JAW] = fields["jaw_params"]
    if eyelid is not None:
        out[:, EYELIDS] = fields["eyelid_params"]
    return out


# --------------------------------------------------------------------------- clip builders


def _source_fps(arrays: Mapping[str, np.ndarray], fps: float | None, where: str) -> float:
    """The source frame rate: ``fps`` if given, else the file's ``fps`` entry, else 25."""
    recorded = None
    if "fps" in arrays:
        value = np.asarray(arrays["fps"])
        if value.ndim != 0 or value.dtype.kind not in "iuf" or not np.isfinite(value) or value <= 0:
            raise MotionFormatError(f"{where}: 'fps' must be a positive scalar, got {arrays['fps']!r}")
        recorded = float(value)
    if fps is None:
        return recorded if recorded is not None else float(FPS)
    if recorded is not None and float(fps) != recorded:
        raise MotionFormatError(f"{where} records {recorded:g} fps, but fps={fps} was given")
    return float(fps)


def _audio(arrays: Mapping[str, np.ndarray], where: str) -> tuple[np.ndarray | None, int | None]:
    if "audio" not in arrays:
        return None, None
    if "sample_rate" not in arrays:
        raise MotionFormatError(f"{where} has 'audio' but no 'sample_rate'")
    return validate_audio(arrays["audio"], arrays["sample_rate"], name=f"{where}: audio")


def _motion_clip(motion: np.ndarray, arrays: Mapping[str, np.ndarray], fps: float | None,
                 where: str) -> MotionClip:
    """Resample a converted [T, 58] motion to 25 fps, validate it and attach any audio."""
    src_fps = _source_fps(arrays, fps, where)
    name = f"{where}: motion"
    if src_fps != FPS:
        motion = resample_motion(motion, src_fps, FPS, name=name)
    audio, sample_rate = _audio(arrays, where)
    return MotionClip(validate_motion(motion, FPS, name=name), FPS, audio, sample_rate)


def from_a2llm(arrays: Mapping[str, np.ndarray], fps: float | None = None, *, where: str = "input") -> MotionClip:
    """This project's layout ([T, 58] ``motion`` or a bare array) at any frame rate -> MotionClip."""
    return _motion_clip(_main_array(arrays, where), arrays, fps, where)


def from_artalk(arrays: Mapping[str, np.ndarray], fps: float | None = None, *, where: str = "input") -> MotionClip:
    """ARTalk's (T, 106) motion (key ``motion`` or the single array) -> MotionClip."""
    return _motion_clip(artalk_to_motion(_main_array(arrays, where)), arrays, fps, where)


def from_diffposetalk(arrays: Mapping[str, np.ndarray], fps: float | None = None, *,
                      where: str = "input") -> MotionClip:
    """DiffPoseTalk's ``exp`` + ``pose`` (``shape`` ignored) -> MotionClip."""
    missing = [k for k in ("exp", "pose") if k not in arrays]
    if missing:
        raise MotionFormatError(f"{where}: DiffPoseTalk output needs {missing}; keys present: {sorted(arrays)}")
    return _motion_clip(diffposetalk_to_motion(arrays["exp"], arrays["pose"], where=where), arrays, fps, where)


def from_smirk(arrays: Mapping[str, np.ndarray], fps: float | None = None, *, where: str = "input") -> MotionClip:
    """SMIRK's stacked parameters (``shape_params``/``cam`` ignored) -> MotionClip."""
    missing = [k for k in _SMIRK_KEYS[:3] if k not in arrays]
    if missing:
        raise MotionFormatError(f"{where}: SMIRK output needs {missing}; keys present: {sorted(arrays)}")
    motion = smirk_to_motion(*(arrays.get(k) for k in _SMIRK_KEYS), where=where)
    return _motion_clip(motion, arrays, fps, where)


def from_vertices(arrays: Mapping[str, np.ndarray], fps: float | None = None, *, where: str = "input",
                  allow_any_topology: bool = False) -> VertexClip:
    """A vertex sequence (key ``vertices``/``verts`` or the single array) -> VertexClip at 25 fps.

    Other frame rates are resampled by linear interpolation of vertex positions, which is close to
    interpolating the underlying motion at the small per-frame changes of speech animation.
    """
    key = next((k for k in _VERTEX_KEYS if k in arrays), None)
    verts = arrays[key] if key is not None else _main_array(arrays, where)
    name = f"{where}: vertices"
    verts = validate_vertices(verts, allow_any_topology=allow_any_topology, name=name)
    src_fps = _source_fps(arrays, fps, where)
    if src_fps != FPS:
        verts = validate_vertices(resample_linear(verts, src_fps, FPS),
                                  allow_any_topology=allow_any_topology, name=name)
    audio, sample_rate = _audio(arrays, where)
    return VertexClip(verts, FPS, audio, sample_rate)


#: kind -> builder ``(arrays, fps=None, *, where=...) -> MotionClip | VertexClip``.
IMPORTERS: dict[str, Callable[..., Clip]] = {
    "a2llm": from_a2llm,
    "artalk": from_artalk,
    "diffposetalk": from_diffposetalk,
    "smirk": from_smirk,
    "vertices": from_vertices,
}


def import_motion(path: str | Path, kind: str = "auto", *, fps: float | None = None,
                  allow_any_topology: bool = False) -> Clip:
    """Read a peer's output and convert it to the project's format.

    Args:
        path: file or folder (see the module docstring for each kind's layout).
        kind: one of :data:`IMPORTERS`, or "auto" to apply :func:`detect_kind`'s rules.
        fps: the source frame rate; None means the file's ``fps`` entry, else 25.
        allow_any_topology: for vertex input, accept meshes other than FLAME's 5023 vertices.

    Returns:
        MotionClip ([T, 58] float32 at 25 fps), or VertexClip ([T, V, 3] at 25 fps) for vertex input.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        MotionFormatError: unknown kind, undetectable or malformed content.
    """
    if kind != "auto" and kind not in IMPORTERS:
        raise MotionFormatError(f"unknown kind {kind!r}; expected 'auto' or one of {sorted(IMPORTERS)}")
    where = str(path)
    arrays = read_arrays(path)
    if kind == "auto":
        kind = detect_kind(arrays, where=where)
    options = {"allow_any_topology": allow_any_topology} if kind == "vertices" else {}
    return IMPORTERS[kind](arrays, fps, where=where, **options)
