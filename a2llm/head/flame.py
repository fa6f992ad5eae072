"""Real FLAME behind the :class:`~a2llm.head.base.HeadModel` interface, without chumpy.

FLAME 2020 ships as ``generic_model.pkl``: a Python-2 pickle whose arrays are chumpy ``Ch`` objects and
whose joint regressor is a scipy sparse matrix. chumpy no longer imports on current numpy, and a pickle
can run arbitrary code, so this module reads FLAME pickles with :class:`SafeFlameUnpickler`: a whitelist
of numpy / scipy-sparse / container names, with every chumpy class mapped to an inert stand-in that only
keeps the pickled state (chumpy stores a ``Ch``'s value in its state dict under ``'x'``).

    python -m a2llm.head.flame convert checkpoints/flame/generic_model.pkl   # -> checkpoints/flame/flame2020.npz
    python -m a2llm.head.flame check                                          # what is present / missing

Files looked for in a FLAME folder (see checkpoints/flame/README.md):

- model, first found wins: ``flame2020.npz``, ``flame2023.npz`` (converted here), ``generic_model.pkl``
  (FLAME 2020), ``flame2023_Open.pkl`` (FLAME 2023 Open, CC-BY-4.0), ``flame2023.pkl`` (FLAME 2023);
- ``FLAME_masks.pkl`` (or ``FLAME_masks/FLAME_masks.pkl``): the "FLAME Vertex Masks" download, required;
- ``l_eyelid.npy`` + ``r_eyelid.npy``: eyelid-closing blendshapes as shipped by SMIRK / metrical-tracker, optional.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pickle
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from a2llm.head.base import JOINTS, PARENTS, HeadData
from a2llm.motion.layout import NUM_EXPR

#: FLAME 2020 / 2023 put 300 identity components before the 100 expression components in ``shapedirs``.
NUM_SHAPE = 300
#: The converted-npz format written by :func:`convert_flame_pkl` (bumped if its keys change).
NPZ_VERSION = 1
DOWNLOAD_URL = "https://flame.is.tue.mpg.de"

#: (file name, head name) in the order :func:`find_flame_model` tries them.
MODEL_FILES = (
    ("flame2020.npz", "flame2020"),
    ("flame2023.npz", "flame2023"),
    ("generic_model.pkl", "flame2020"),
    ("flame2023_Open.pkl", "flame2023"),
    ("flame2023.pkl", "flame2023"),
)
MASK_FILES = ("FLAME_masks.pkl", "FLAME_masks/FLAME_masks.pkl")
EYELID_FILES = ("l_eyelid.npy", "r_eyelid.npy")

#: Keys of generic_model.pkl this module needs (the pickle also holds 'J', 'bs_style', 'bs_type').
MODEL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
#: FLAME_masks.pkl regions the head regions are built from.
MASK_KEYS = ("lips", "face", "eye_region", "forehead")

# Mouth landmarks (FLAME 2020/2023 topology, 5023 vertices), checked against public code:
# - upper_lip 3531 / lower_lip 3504: the pair a public lip-sync evaluation script uses for the inter-lip
#   (mouth-opening) distance on 5023-vertex FLAME meshes ("central outer-lip vertices"). Chosen because it
#   is the one pair found used for lip opening as such; an EMOCA-based talking-head loss uses 3547 / 3513
#   for the same purpose. DESIGN.md's alternatives 3541 / 3511 were not found in public code.
# - corners 2845 / 1730: that EMOCA-based loss's "left corner" / "right corner" (mouth width).
#   DESIGN.md's 2819 / 1702 were not found in public code. Which corner is "left" is decided from the
#   template (larger x = the head's left in FLAME axes), so the labels cannot be swapped silently.
UPPER_LIP, LOWER_LIP = 3531, 3504
MOUTH_CORNERS = (2845, 1730)


# --- safe unpickling ---------------------------------------------------------------------------------
class _ChumpyStandIn:
    """Inert stand-in for any chumpy class: keeps the pickled state dict, runs no chumpy code."""

    chumpy_class = "chumpy"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.chumpy_class}: expected a dict state, got {type(state).__name__}")
        self.state = state

    def to_array(self) -> np.ndarray:
        """The stored value: ``state['x']``, following nested chumpy objects."""
        x = getattr(self, "state", {}).get("x")
        if x is None:
            raise pickle.UnpicklingError(
                f"{self.chumpy_class} object stores no array under 'x' (it is a lazily evaluated chumpy "
                "expression, not a plain array); this loader only reads plain chumpy arrays. Re-save the "
                "model with its arrays evaluated (np.array(value)) in an environment that has chumpy.")
        return x.to_array() if isinstance(x, _ChumpyStandIn) else np.asarray(x)


class _SparseStandIn:
    """Stand-in for a pickled scipy sparse matrix: rebuilt from its arrays, so the scipy version that
    wrote the pickle (old ``scipy.sparse.csc`` or new ``scipy.sparse._csc``) does not matter."""

    sparse_format = "csc"

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"sparse {self.sparse_format} matrix: expected a dict state")
        self.state = state

    def to_scipy(self) -> sp.spmatrix:
        s = self.state
        shape = tuple(s.get("_shape", s.get("shape")))
        if self.sparse_format == "coo":
            row, col = s["coords"] if "coords" in s else (s["row"], s["col"])
            return sp.coo_matrix((s["data"], (row, col)), shape=shape)
        build = sp.csc_matrix if self.sparse_format == "csc" else sp.csr_matrix
        return build((s["data"], s["indices"], s["indptr"]), shape=shape)


def _numpy_core(module: str) -> Any:
    # numpy 2 moved numpy.core to numpy._core; import the real one so no deprecation shim is touched.
    try:
        return importlib.import_module(f"numpy._core.{module}")
    except ImportError:  # numpy 1.x
        return importlib.import_module(f"numpy.core.{module}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import _codecs
    import builtins
    import copyreg

    ma, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 protocol-2 pickles store bytes as _codecs.encode(text, 'latin1'): a pure function.
        ("_codecs", "encode"): _codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = ma._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = ma.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol-5 arrays
    # Python 2 names (__builtin__, copy_reg) are listed next to the Python 3 ones: find_class sees them raw.
    for mod in ("builtins", "__builtin__"):
        for name in ("set", "frozenset", "list", "dict", "tuple", "object", "complex", "bytes", "bytearray"):
            allowed[(mod, name)] = getattr(builtins, name)
    for mod in ("copyreg", "copy_reg"):  # protocol 0/1 pickles rebuild plain objects through it
        allowed[(mod, "_reconstructor")] = copyreg._reconstructor
    return allowed


_ALLOWED = _allowed_globals()
_SPARSE_CLASSES = {f"{fmt}_{kind}": fmt for fmt in ("csc", "csr", "coo") for kind in ("matrix", "array")}
_standins: dict[str, type] = {}


def _standin(base: type, qualname: str, **attrs: Any) -> type:
    """One stand-in subclass per pickled class name, so error messages can name the original class."""
    if qualname not in _standins:
        _standins[qualname] = type(base.__name__, (base,), attrs)
    return _standins[qualname]


class SafeFlameUnpickler(pickle.Unpickler):
    """Unpickler for semi-trusted FLAME downloads: only whitelisted globals can be referenced.

    Allowed: numpy arrays/dtypes/scalars, scipy sparse csc/csr/coo matrices (rebuilt as stand-ins),
    builtin containers, and chumpy classes (mapped to an inert stand-in). Anything else, e.g.
    ``os.system``, raises :class:`pickle.UnpicklingError` naming it, before it could be called.
    """

    def __init__(self, file: Any) -> None:
        super().__init__(file, encoding="latin1")  # Python-2 str payloads (array bytes) decode 1:1

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return _standin(_ChumpyStandIn, qualname, chumpy_class=qualname)
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) and name in _SPARSE_CLASSES:
            return _standin(_SparseStandIn, qualname, sparse_format=_SPARSE_CLASSES[name])
        raise pickle.UnpicklingError(
            f"refusing to load {qualname!r} from a FLAME pickle: only numpy arrays, scipy sparse matrices, "
            "builtin containers and chumpy arrays are allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("FLAME pickles carry no persistent ids; refusing to resolve one")


def _plain(obj: Any) -> Any:
    """Replace stand-ins by numpy arrays / scipy matrices, recursively through containers."""
    if isinstance(obj, _ChumpyStandIn):
        return obj.to_array()
    if isinstance(obj, _SparseStandIn):
        return obj.to_scipy()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


def safe_load_pickle(path: str | Path) -> Any:
    """Load a FLAME-style pickle through :class:`SafeFlameUnpickler`; chumpy arrays come back as numpy.

    Raises:
        pickle.UnpicklingError: the pickle references a non-whitelisted global, or a chumpy object
            that holds no plain array.
    """
    with open(path, "rb") as fh:
        return _plain(SafeFlameUnpickler(fh).load())


# --- model arrays --------------------------------------------------------------------------------------
def _dense(value: Any) -> np.ndarray:
    return value.toarray() if sp.issparse(value) else np.asarray(value)


def read_flame_pkl(path: str | Path) -> dict[str, np.ndarray]:
    """Read a FLAME model pickle into converted arrays (the :func:`convert_flame_pkl` npz layout).

    Returns:
        dict with v_template [V, 3], f [F, 3], shapedirs [V, 3, S] (S = 400 in FLAME 2020: 300 shape +
        100 expression), posedirs [36, V*3] (smplx layout: ``raw.reshape(-1, 36).T``), J_regressor
        dense [5, V], weights [V, 5], kintree_table [2, 5]. Floats are float32.
    """
    raw = safe_load_pickle(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of FLAME arrays, got {type(raw).__name__}")
    missing = [k for k in MODEL_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a FLAME model, missing keys {missing} (has {sorted(raw)})")
    posedirs = _dense(raw["posedirs"])
    if posedirs.ndim != 3:
        raise ValueError(f"{path}: posedirs must be [V, 3, P], got {posedirs.shape}")
    arrays = {
        "v_template": _dense(raw["v_template"]).astype(np.float32),
        "f": _dense(raw["f"]).astype(np.int32),
        "shapedirs": _dense(raw["shapedirs"]).astype(np.float32),
        # the layout smplx's SMPL/FLAME use: [V, 3, P] -> [V*3, P] -> [P, V*3]
        "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T.astype(np.float32),
        "J_regressor": _dense(raw["J_regressor"]).astype(np.float32),
        "weights": _dense(raw["weights"]).astype(np.float32),
        "kintree_table": _dense(raw["kintree_table"]).astype(np.int64),
    }
    _check_arrays(arrays, str(path))
    return arrays


def _check_arrays(a: dict[str, np.ndarray], source: str) -> None:
    """Raise ValueError when converted FLAME arrays do not fit together or the kinematic tree differs."""
    V = a["v_template"].shape[0]
    J = len(JOINTS)
    f, kt = a["f"], a["kintree_table"]
    checks = [
        (a["v_template"].shape == (V, 3), f"v_template must be [V, 3], got {a['v_template'].shape}"),
        (f.ndim == 2 and f.shape[1] == 3 and f.min() >= 0 and f.max() < V, f"f must be [F, 3] indices < {V}"),
        (a["shapedirs"].ndim == 3 and a["shapedirs"].shape[:2] == (V, 3)
         and a["shapedirs"].shape[2] >= NUM_SHAPE + NUM_EXPR,
         f"shapedirs must be [{V}, 3, >= {NUM_SHAPE + NUM_EXPR}] ({NUM_SHAPE} shape then expression "
         f"components, as in FLAME 2020/2023), got {a['shapedirs'].shape}"),
        (a["posedirs"].shape == ((J - 1) * 9, V * 3), f"posedirs must be [{(J - 1) * 9}, {V * 3}], "
         f"got {a['posedirs'].shape}"),
        (a["J_regressor"].shape == (J, V), f"J_regressor must be [{J}, {V}], got {a['J_regressor'].shape}"),
        (a["weights"].shape == (V, J), f"weights must be [{V}, {J}], got {a['weights'].shape}"),
        (kt.shape == (2, J) and tuple(kt[0, 1:]) == PARENTS[1:],
         f"kintree_table must be [2, {J}] with parents {PARENTS[1:]} (root, neck, jaw, eyes), got {kt.tolist()}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(f"{source}: {msg}")


def _save_npz(arrays: dict[str, np.ndarray], name: str, source: str, out: Path) -> None:
    """Write atomically (temp file + rename) so an interrupted write never leaves a broken cache.

    Uncompressed: the bases are dense floats that zlib barely shrinks, and compressing costs seconds.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, name=np.array(name), source=np.array(source),
                     flame_npz_version=np.array(NPZ_VERSION), **arrays)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def head_name_for(path: str | Path) -> str:
    """'flame2020' or 'flame2023' from a model file name (generic_model.pkl is FLAME 2020)."""
    return "flame2023" if "2023" in Path(path).name else "flame2020"


def convert_flame_pkl(pkl_path: str | Path, out_npz: str | Path | None = None) -> Path:
    """Convert a FLAME pickle to a plain npz (loadable with ``allow_pickle=False``).

    Args:
        pkl_path: generic_model.pkl (FLAME 2020), flame2023_Open.pkl or flame2023.pkl.
        out_npz: output path; default ``<folder of pkl_path>/<flame2020|flame2023>.npz``.

    Returns:
        The path written. Keys: see :func:`read_flame_pkl`, plus name, source, flame_npz_version.
    """
    pkl_path = Path(pkl_path)
    out = Path(out_npz) if out_npz is not None else pkl_path.with_name(f"{head_name_for(pkl_path)}.npz")
    _save_npz(read_flame_pkl(pkl_path), head_name_for(pkl_path), pkl_path.name, out)
    return out


def is_flame_npz(path: str | Path) -> bool:
    """True for an npz written by :func:`convert_flame_pkl`."""
    if not zipfile.is_zipfile(path):  # a .npy or anything else
        return False
    with np.load(path, allow_pickle=False) as z:
        return "flame_npz_version" in z.files


def read_flame_npz(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """Read a converted npz: (arrays as in :func:`read_flame_pkl`, head name)."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in (*MODEL_KEYS, "name") if k not in z.files]
        if missing:
            raise ValueError(f"{path}: not a converted FLAME npz, missing {missing}; "
                             "re-create it with `python -m a2llm.head.flame convert <model.pkl>`")
        arrays = {k: z[k] for k in MODEL_KEYS}
        name = str(z["name"])
    _check_arrays(arrays, str(path))
    return arrays, name


# --- folder assets ----------------------------------------------------------------------------------------
def find_flame_model(folder: str | Path) -> tuple[Path, str]:
    """The first model file of :data:`MODEL_FILES` present in ``folder``: (path, head name).

    Raises:
        FileNotFoundError: none is present; the message says what to download and where to put it.
    """
    folder = Path(folder)
    for fname, name in MODEL_FILES:
        if (folder / fname).is_file():
            return folder / fname, name
    raise FileNotFoundError(
        f"no FLAME model in {folder} (looked for {', '.join(f for f, _ in MODEL_FILES)}). Download one of:\n"
        f"  - FLAME 2020: register at {DOWNLOAD_URL}, download 'FLAME 2020' and put generic_model.pkl in "
        f"{folder} (non-commercial research licence);\n"
        f"  - FLAME 2023 Open (CC-BY-4.0) from the same site: put flame2023_Open.pkl in {folder}.\n"
        "The default folder is checkpoints/flame/; see checkpoints/flame/README.md. Optionally convert once "
        "with `python -m a2llm.head.flame convert <model.pkl>`.")


def find_flame_masks(folder: str | Path) -> Path:
    """Path of FLAME_masks.pkl in ``folder``; FileNotFoundError saying where to get it otherwise."""
    folder = Path(folder)
    for fname in MASK_FILES:
        if (folder / fname).is_file():
            return folder / fname
    raise FileNotFoundError(
        f"FLAME_masks.pkl not found in {folder}: the lips / face / upper-face regions the metrics use come "
        f"from it. Download 'FLAME Vertex Masks' from {DOWNLOAD_URL} (Downloads page) and put FLAME_masks.pkl "
        f"in {folder} (default checkpoints/flame/).")


def read_flame_masks(path: str | Path, num_vertices: int) -> dict[str, np.ndarray]:
    """FLAME_masks.pkl as {region name: int64 vertex indices}; ValueError on missing keys / bad indices."""
    masks = safe_load_pickle(path)
    if not isinstance(masks, dict):
        raise ValueError(f"{path}: expected a dict of region name -> vertex indices, got {type(masks).__name__}")
    missing = [k for k in MASK_KEYS if k not in masks]
    if missing:
        raise ValueError(f"{path}: missing regions {missing} (has {sorted(masks)})")
    out = {str(k): np.asarray(v, dtype=np.int64).ravel() for k, v in masks.items()}
    for k, v in out.items():
        if v.size and (v.min() < 0 or v.max() >= num_vertices):
            raise ValueError(f"{path}: region {k!r} indexes vertices outside [0, {num_vertices})")
    return out


def read_eyelids(folder: str | Path, num_vertices: int) -> np.ndarray | None:
    """[2, V, 3] (left, right) eyelid blendshapes from l_eyelid.npy / r_eyelid.npy, or None if both absent."""
    paths = [Path(folder) / f for f in EYELID_FILES]
    present = [p.is_file() for p in paths]
    if not any(present):
        return None
    if not all(present):
        have, lack = (paths[0], paths[1]) if present[0] else (paths[1], paths[0])
        raise FileNotFoundError(f"found {have.name} but not {lack.name} in {folder}: eyelids need both files")
    dirs = []
    for p in paths:
        d = np.load(p, allow_pickle=False)
        if d.shape != (num_vertices, 3):
            raise ValueError(f"{p}: eyelid blendshape must be [{num_vertices}, 3], got {d.shape}")
        dirs.append(d.astype(np.float32))
    return np.stack(dirs)


def mouth_landmarks(template: np.ndarray) -> dict[str, int]:
    """The four mouth landmarks; the corner with the larger x is the head's left (FLAME: x points left)."""
    a, b = MOUTH_CORNERS
    left, right = (a, b) if template[a, 0] >= template[b, 0] else (b, a)
    return {"upper_lip": UPPER_LIP, "lower_lip": LOWER_LIP, "mouth_left": left, "mouth_right": right}


def _warn_if_implausible(template: np.ndarray, lips: np.ndarray, landmarks: dict[str, int], name: str) -> None:
    # The indices come from public code, not from the FLAME authors; say so loudly if the mesh disagrees.
    outside = [k for k, v in landmarks.items() if v not in set(lips.tolist())]
    if outside:
        warnings.warn(f"head {name!r}: landmarks {outside} are not in the FLAME 'lips' mask; "
                      "lip metrics may measure the wrong vertices", stacklevel=3)
    if template[landmarks["upper_lip"], 1] <= template[landmarks["lower_lip"], 1]:
        warnings.warn(f"head {name!r}: upper_lip vertex is not above lower_lip in the template", stacklevel=3)


def shaped_template(v_template: np.ndarray, shapedirs: np.ndarray,
                    shape: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """[V, 3] float64 template with identity betas baked in: v_template + shapedirs[..., :n] @ shape."""
    template = v_template.astype(np.float64)
    if shape is None:
        return template
    betas = np.asarray(shape, dtype=np.float64)
    if betas.ndim != 1 or len(betas) > NUM_SHAPE:
        raise ValueError(f"shape must be a 1-D array of at most {NUM_SHAPE} betas, got shape {betas.shape}")
    return template + shapedirs[:, :, :len(betas)].astype(np.float64) @ betas


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _resolve_model(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Arrays from a model file; a pickle is converted and cached as npz next to it when writable."""
    if path.suffix == ".npz":
        return read_flame_npz(path)
    arrays, name = read_flame_pkl(path), head_name_for(path)
    cache = path.with_name(f"{name}.npz")
    if _writable(path.parent) and not cache.exists():
        try:
            _save_npz(arrays, name, path.name, cache)
        except OSError:
            pass  # a read-only or full disk only costs a re-conversion next time
    return arrays, name


def load_flame_data(folder: str | Path, shape: Sequence[float] | np.ndarray | None = None) -> HeadData:
    """Build :class:`HeadData` for real FLAME from a folder (or a converted npz inside one).

    Args:
        folder: a FLAME folder (see module docstring), or the path of a converted ``.npz`` whose folder
            holds the masks (and optionally the eyelids).
        shape: optional identity betas, up to 300 values, baked into the template.

    Returns:
        HeadData named "flame2020" / "flame2023": expression = shapedirs[..., 300:350], FLAME's own
        J_regressor / weights / posedirs, regions lips / face / upper_face (= eye_region ∪ forehead) plus
        every FLAME mask region under its own name, mouth landmarks, eyelids if both npys are present.

    Raises:
        FileNotFoundError: no model, or no FLAME_masks.pkl (the message says where to get them).
    """
    folder = Path(folder)
    model_path = folder if folder.suffix == ".npz" else find_flame_model(folder)[0]
    folder = model_path.parent
    masks_path = find_flame_masks(folder)  # before the (slow) conversion: fail fast without the masks
    arrays, name = _resolve_model(model_path)
    V = arrays["v_template"].shape[0]
    masks = read_flame_masks(masks_path, V)
    shapedirs = arrays["shapedirs"]
    template = shaped_template(arrays["v_template"], shapedirs, shape)
    if max(UPPER_LIP, LOWER_LIP, *MOUTH_CORNERS) >= V:
        raise ValueError(f"{model_path}: {V} vertices; the mouth landmarks need the 5023-vertex FLAME topology")
    landmarks = mouth_landmarks(template)
    # lips and face are FLAME masks as they are; every other mask rides along under its own name
    regions = {**masks, "upper_face": np.union1d(masks["eye_region"], masks["forehead"])}
    _warn_if_implausible(template, regions["lips"], landmarks, name)
    data = HeadData(
        name=name,
        template=template.astype(np.float32),
        faces=arrays["f"].astype(np.int64),
        expr_dirs=np.ascontiguousarray(shapedirs[:, :, NUM_SHAPE:NUM_SHAPE + NUM_EXPR], dtype=np.float32),
        J_regressor=arrays["J_regressor"],
        lbs_weights=arrays["weights"],
        posedirs=arrays["posedirs"],
        eyelid_dirs=read_eyelids(folder, V),
        regions=regions,
        landmarks=landmarks,
        vertex_colors=None,
    )
    data.validate()
    return data


# --- command line ------------------------------------------------------------------------------------------
def check_folder(folder: str | Path) -> tuple[bool, str]:
    """(loadable, human-readable report of what is present / missing in a FLAME folder)."""
    folder = Path(folder)
    names = [f for f, _ in MODEL_FILES] + list(MASK_FILES) + list(EYELID_FILES)
    lines = [f"FLAME folder {folder}:"]
    lines += [f"  [{'x' if (folder / n).is_file() else ' '}] {n}" for n in names]
    try:
        data = load_flame_data(folder)
    except (FileNotFoundError, ValueError, pickle.UnpicklingError) as e:
        lines.append(f"not loadable: {e}")
        return False, "\n".join(lines)
    lines.append(f"loadable: {data.name}, {len(data.template)} vertices, {len(data.faces)} faces, "
                 f"eyelids {'yes' if data.eyelid_dirs is not None else 'no (eyelid columns are ignored)'}")
    return True, "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from a2llm.head import FLAME_DIR  # the package default, resolved lazily to keep imports one-way

    parser = argparse.ArgumentParser(prog="python -m a2llm.head.flame",
                                     description="Convert or check real FLAME files (no chumpy needed).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="convert a FLAME pickle to a chumpy-free npz")
    conv.add_argument("pkl", type=Path, help="generic_model.pkl, flame2023_Open.pkl or flame2023.pkl")
    conv.add_argument("--out", type=Path, default=None,
                      help=f"output npz (default {FLAME_DIR}/<flame2020|flame2023>.npz)")
    chk = sub.add_parser("check", help="report which FLAME files are present / missing")
    chk.add_argument("dir", type=Path, nargs="?", default=FLAME_DIR)
    args = parser.parse_args(argv)
    if args.cmd == "convert":
        out = args.out if args.out is not None else FLAME_DIR / f"{head_name_for(args.pkl)}.npz"
        try:
            print(f"wrote {convert_flame_pkl(args.pkl, out)}")
        except (OSError, ValueError, pickle.UnpicklingError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    ok, report = check_folder(args.dir)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
