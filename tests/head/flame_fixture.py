"""Writes a synthetic FLAME folder in the real file formats, for tests (no FLAME download needed).

``generic_model.pkl`` is written the way Python 2 wrote FLAME 2020: protocol 2, a dict whose arrays are
chumpy ``Ch`` objects (``chumpy.ch.Ch`` with chumpy's state dict, value under ``'x'``), numpy arrays
rebuilt through ``numpy.core.multiarray._reconstruct`` with their bytes as a latin-1 string, and the
joint regressor as a ``scipy.sparse.csc.csc_matrix`` (the pre-1.8 scipy module path). chumpy itself is
not needed: a fake ``chumpy.ch`` module is put in ``sys.modules`` only while pickling. The geometry is a
random smooth-ish head of FLAME's size (5023 vertices, 9976 faces) with known regions, so tests can
check that each parameter moves the vertices it should.
"""
from __future__ import annotations

import copyreg
import pickle
import pickletools
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

V, F = 5023, 9976
NUM_SHAPE, NUM_EXPR_ALL, NUM_POSE = 300, 100, 36
HEAD_VERTICES = 3931  # FLAME: vertices 3931.. are the two eyeballs (546 each)
#: Keys of FLAME 2020's generic_model.pkl, in its order.
MODEL_KEYS = ("f", "J_regressor", "kintree_table", "J", "bs_style", "weights", "posedirs", "v_template",
              "shapedirs", "bs_type")
MASK_KEYS = ("eye_region", "forehead", "lips", "face", "left_eye_region", "right_eye_region", "nose", "scalp",
             "neck", "boundary", "left_ear", "right_ear", "left_eyeball", "right_eyeball")
#: The globals a Python-2 FLAME pickle references (and nothing else).
PY2_FLAME_GLOBALS = {"chumpy.ch Ch", "numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype",
                     "__builtin__ set", "scipy.sparse.csc csc_matrix"}
UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT = 3531, 3504, 2845, 1730


# --- legacy pickle writing ------------------------------------------------------------------------------------
class _FakePickled:
    """Pickles as ``NEWOBJ(cls) + BUILD(state)``: how Python 2 pickled chumpy / scipy objects."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def __reduce_ex__(self, protocol: int) -> tuple:
        return copyreg.__newobj__, (type(self),), self._state


_fake_chumpy: dict[tuple[str, str], type] = {}


def chumpy_object(state: dict[str, Any], module: str = "chumpy.ch", name: str = "Ch") -> _FakePickled:
    """An object that pickles as chumpy class ``module.name`` with the given state."""
    if (module, name) not in _fake_chumpy:
        _fake_chumpy[(module, name)] = type(name, (_FakePickled,), {"__module__": module, "__qualname__": name})
    return _fake_chumpy[(module, name)](state)


def ch(x: Any) -> _FakePickled:
    """A plain ``chumpy.ch.Ch`` with chumpy's instance dict (minus the weakref caches it drops on pickling)."""
    value = x if isinstance(x, _FakePickled) else np.asarray(x, dtype=np.float64)
    return chumpy_object({"_dirty_vars": set(), "_itr": None, "_make_dense": False, "_make_sparse": False,
                          "_depends_on_deps": {}, "x": value})


class _LegacyCscMatrix(_FakePickled):
    """A csc matrix as Python-2-era scipy pickled it (instance dict of ``scipy.sparse.csc.csc_matrix``)."""

    def __init__(self, dense: np.ndarray):
        m = sp.csc_matrix(dense)
        super().__init__({"_shape": m.shape, "maxprint": 50, "format": "csc", "indices": m.indices,
                          "indptr": m.indptr, "data": m.data})


@contextmanager
def _fake_chumpy_modules() -> Iterator[None]:
    modules: dict[str, types.ModuleType] = {}
    for (module, name), cls in _fake_chumpy.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        setattr(modules[module], name, cls)
    saved = {m: sys.modules.get(m) for m in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for m, old in saved.items():
            if old is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = old


class _Py2ArrayPickler(pickle.Pickler):
    """Writes numpy arrays as Python 2 did: ``_reconstruct`` + state holding the bytes as a (latin-1) str."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray:
            a = np.ascontiguousarray(obj)
            reconstruct = _numpy_reconstruct()
            return reconstruct, (np.ndarray, (0,), "b"), (1, a.shape, a.dtype, False, a.tobytes().decode("latin1"))
        return NotImplemented


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def write_legacy_pickle(path: Path, obj: Any) -> None:
    """Pickle ``obj`` (protocol 2) with the module paths a Python-2 FLAME pickle references."""
    import io

    buf = io.BytesIO()
    with _fake_chumpy_modules():
        _Py2ArrayPickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    # Protocol 2 names globals as "c<module>\n<name>\n" and memoises them by index, not by offset, so the
    # module path can be renamed in place: the Python 3 names become the ones the 2017-era files hold.
    renames = {
        f"c{_numpy_reconstruct().__module__}\n_reconstruct\n": "cnumpy.core.multiarray\n_reconstruct\n",
        f"c{_LegacyCscMatrix.__module__}\n_LegacyCscMatrix\n": "cscipy.sparse.csc\ncsc_matrix\n",
    }
    for old, new in renames.items():
        data = data.replace(old.encode(), new.encode())
    path.write_bytes(data)


def pickle_globals(path: Path) -> set[str]:
    """Every 'module name' global a pickle file references."""
    return {arg for op, arg, _ in pickletools.genops(path.read_bytes()) if op.name == "GLOBAL"}


# --- synthetic head ---------------------------------------------------------------------------------------------
@dataclass
class FlameFixture:
    """What was written, as plain arrays, for reference computations.

    Attributes:
        folder: where the files are.
        raw: model arrays as pickled: v_template [V, 3], f [F, 3], shapedirs [V, 3, 400],
            posedirs [V, 3, 36], J_regressor dense [5, V], weights [V, 5], kintree_table [2, 5], J [5, 3].
        masks: FLAME_masks.pkl content.
        eyelids: [2, V, 3] (left, right) or None when not written.
        expr_support: expression index -> vertices its blendshape moves (0: the lips, 1: the upper face).
        jaw_vertices: vertices skinned (partly) to the jaw; posedirs are nonzero only there.
    """

    folder: Path
    raw: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    eyelids: np.ndarray | None
    expr_support: dict[int, np.ndarray]
    jaw_vertices: np.ndarray


def _template(rng: np.random.Generator) -> np.ndarray:
    """Points on a head-sized ellipsoid (metres), eyeballs as small spheres, mouth landmarks placed."""
    d = rng.normal(size=(V, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    v = d * np.array([0.08, 0.11, 0.095])
    n_eye = (V - HEAD_VERTICES) // 2
    for i, cx in enumerate((0.032, -0.032)):
        sl = slice(HEAD_VERTICES + i * n_eye, HEAD_VERTICES + (i + 1) * n_eye)
        v[sl] = d[sl] * 0.012 + np.array([cx, 0.02, 0.07])
    v[UPPER_LIP] = (0.0, -0.030, 0.090)
    v[LOWER_LIP] = (0.0, -0.045, 0.090)
    v[MOUTH_LEFT] = (0.025, -0.038, 0.085)
    v[MOUTH_RIGHT] = (-0.025, -0.038, 0.085)
    return v


def _smooth_dirs(rng: np.random.Generator, v: np.ndarray, k: int, amplitude: float) -> np.ndarray:
    """[V, 3, k] displacement fields that vary smoothly over the surface (sines of position)."""
    w = rng.normal(scale=20.0, size=(k, 3, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(3, k))
    return amplitude * np.sin(np.einsum("vd,kcd->vck", v, w) + phase)


def _masks(v: np.ndarray) -> dict[str, np.ndarray]:
    x, y, z = v.T
    head = np.arange(V) < HEAD_VERTICES
    n_eye = (V - HEAD_VERTICES) // 2
    eye = head & (z > 0.03) & (y > -0.005) & (y < 0.04) & (np.abs(x) > 0.01) & (np.abs(x) < 0.06)
    lips = head & (z > 0.04) & (y > -0.06) & (y < -0.02) & (np.abs(x) < 0.035)
    lips[[UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT]] = True
    sel = {
        "eye_region": eye, "forehead": head & (z > 0.02) & (y > 0.045), "lips": lips, "face": head & (z > 0.0),
        "left_eye_region": eye & (x > 0), "right_eye_region": eye & (x < 0),
        "nose": head & (z > 0.06) & (y > -0.02) & (y < 0.0) & (np.abs(x) < 0.02), "scalp": head & (y > 0.08),
        "neck": head & (y < -0.085), "boundary": head & (y < -0.105), "left_ear": head & (x > 0.07),
        "right_ear": head & (x < -0.07),
        "left_eyeball": np.isin(np.arange(V), np.arange(HEAD_VERTICES, HEAD_VERTICES + n_eye)),
        "right_eyeball": np.arange(V) >= HEAD_VERTICES + n_eye,
    }
    out = {k: np.flatnonzero(sel[k]).astype(np.int64) for k in MASK_KEYS}
    empty = [k for k, idx in out.items() if len(idx) == 0]
    assert not empty, f"fixture regions came out empty: {empty}"
    return out


def _faces(rng: np.random.Generator) -> np.ndarray:
    f = rng.integers(0, V, size=(F, 3))
    bad = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    while bad.any():  # resample degenerate triangles
        f[bad] = rng.integers(0, V, size=(int(bad.sum()), 3))
        bad = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    return f.astype(np.uint32)


def _skinning(v: np.ndarray, masks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(J_regressor [5, V], weights [V, 5], jaw vertices): root/neck from the neck ring, jaw from the
    lower face, eyes from the eyeballs; the lower face is skinned to the jaw, the rest to the neck."""
    neck = masks["neck"]
    x, y, z = v.T
    head = np.arange(V) < HEAD_VERTICES
    jaw = np.flatnonzero(head & (y < -0.037) & (z > 0.0) & (y > -0.085))
    reg = np.zeros((5, V))
    for j, idx in enumerate((neck[::2], neck[1::2], jaw[:40], masks["left_eyeball"], masks["right_eyeball"])):
        reg[j, idx] = 1.0 / len(idx)
    w = np.zeros((V, 5))
    w[:, 1] = 1.0
    w[neck] = (0.5, 0.5, 0, 0, 0)
    w[jaw] = (0, 0.2, 0.8, 0, 0)
    w[jaw[::3]] = (0, 0, 1.0, 0, 0)
    w[masks["left_eyeball"]] = (0, 0, 0, 1.0, 0)
    w[masks["right_eyeball"]] = (0, 0, 0, 0, 1.0)
    return reg, w, jaw


def _eyelid(v: np.ndarray, region: np.ndarray) -> np.ndarray:
    d = np.zeros((V, 3))
    upper = region[v[region, 1] > 0.02]
    d[upper, 1] = -0.004  # close: the upper lid moves down
    return d


def write_flame_fixture(folder: str | Path, *, model_file: str = "generic_model.pkl", masks: bool = True,
                        eyelids: bool = True, seed: int = 0) -> FlameFixture:
    """Write a synthetic FLAME folder: the model pickle, FLAME_masks.pkl, l_eyelid.npy / r_eyelid.npy."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    v = _template(rng)
    region = _masks(v)
    reg, weights, jaw = _skinning(v, region)
    shapedirs = _smooth_dirs(rng, v, NUM_SHAPE + NUM_EXPR_ALL, 1e-3)
    support = {0: region["lips"], 1: np.union1d(region["eye_region"], region["forehead"])}
    for k, idx in support.items():  # expressions 0 and 1 move only their region
        keep = np.zeros(V, bool)
        keep[idx] = True
        shapedirs[~keep, :, NUM_SHAPE + k] = 0.0
    posedirs = np.zeros((V, 3, NUM_POSE))
    posedirs[jaw] = _smooth_dirs(rng, v[jaw], NUM_POSE, 2e-3)
    raw = {
        "v_template": v, "f": _faces(rng), "shapedirs": shapedirs, "posedirs": posedirs, "J_regressor": reg,
        "weights": weights, "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64),
        "J": reg @ v,
    }
    pickled = {
        "f": raw["f"], "J_regressor": _LegacyCscMatrix(reg), "kintree_table": raw["kintree_table"],
        "J": ch(raw["J"]), "bs_style": "lbs", "weights": ch(weights), "posedirs": ch(posedirs),
        "v_template": ch(v), "shapedirs": ch(shapedirs), "bs_type": "lrotmin",
    }
    write_legacy_pickle(folder / model_file, {k: pickled[k] for k in MODEL_KEYS})
    if masks:
        write_legacy_pickle(folder / "FLAME_masks.pkl", region)
    lids = None
    if eyelids:
        lids = np.stack([_eyelid(v, region["left_eye_region"]), _eyelid(v, region["right_eye_region"])])
        np.save(folder / "l_eyelid.npy", lids[0])
        np.save(folder / "r_eyelid.npy", lids[1])
    return FlameFixture(folder, raw, region, lids, support, jaw)
