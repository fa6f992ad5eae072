"""Motion -> the formats people animate faces in: ARKit-52 weights (JSON, CSV) and a glTF binary (.glb).

    python -m a2llm.motion.export MOTION.npz --format arkit-json -o OUT.json
    python -m a2llm.motion.export MOTION.npz --format arkit-csv  -o OUT.csv
    python -m a2llm.motion.export MOTION.npz --format glb -o OUT.glb [--identity male]

The 58-D motion is mapped onto Apple's 52 ARKit blendshape names through the human head's slot map
(``a2llm.head.human.SLOT_UNITS``; jaw rotation -> jawOpen / jawLeft / jawRight, eyelids -> eyeBlink), weights in
[0, 1] at 25 fps, plus the head rotation (pitch, yaw, roll in radians). That drives any ARKit-rigged character
(Unreal Live Link Face, Blender add-ons, three.js / Ready Player Me style avatars).

The ``.glb`` holds the human head itself: one mesh with a material per part (skin, lips, hair, eyes, teeth, ...),
per-vertex colours, the 52 ARKit units as named morph targets (``mesh.extras.targetNames``) plus ``jawCorrective``,
a five-joint skin (root, neck, jaw, eyes) and one animation: morph weights per frame, the jaw's rotation and the
head's rotation on the neck. In the animation the jaw opens by its bone (the ``jawOpen`` target stays at 0 and
``jawCorrective``, weighted by the jaw rotation's sin, adds what a rigid jaw misses), so the file plays back exactly
what :class:`a2llm.head.HeadModel` renders. Someone driving the file with an ARKit stream instead sets ``jawOpen``
and leaves the bones at rest. No glTF library is needed: the file is written here and read back by the tests.
"""
from __future__ import annotations

import argparse
import csv
import json
import struct
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from a2llm.motion.layout import EXPR, EYELIDS, FPS, GLOBAL, JAW, MOTION_DIM

FORMATS = ("arkit-json", "arkit-csv", "glb")
SUFFIX = {"arkit-json": ".json", "arkit-csv": ".csv", "glb": ".glb"}
#: Head rotation columns: Euler angles (radians) about x (pitch, + = nod down), y (yaw, + = turn to its left),
#: z (roll), composed x then y then z (scipy "xyz", extrinsic).
HEAD_COLUMNS = ("headPitch", "headYaw", "headRoll")


def _check(motion: np.ndarray) -> np.ndarray:
    m = np.asarray(motion, np.float32)
    if m.ndim != 2 or m.shape[1] != MOTION_DIM:
        raise ValueError(f"motion must be [T, {MOTION_DIM}], got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("motion contains NaN or inf")
    return m


def _human(identity: str | None):
    from a2llm.head.human import DEFAULT_IDENTITY, load_human

    return load_human(identity or DEFAULT_IDENTITY)


def arkit_table(motion: np.ndarray, identity: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """[T, 58] motion -> (the 52 ARKit names, weights [T, 52] in [0, 1], head Euler angles [T, 3] in radians)."""
    from a2llm.head.human import ARKIT_NAMES, arkit_weights

    m = _check(motion)
    head = _human(identity)
    weights = arkit_weights(m, head, clip=True)
    euler = Rotation.from_rotvec(m[:, GLOBAL].astype(np.float64)).as_euler("xyz") if len(m) else np.zeros((0, 3))
    return list(ARKIT_NAMES), weights, euler.astype(np.float32)


def write_arkit_json(path: str | Path, motion: np.ndarray, identity: str | None = None, fps: int = FPS) -> Path:
    """ARKit-52 weights per frame as JSON: ``{"names": [52], "weights": [[52] per frame], "head": ...}``."""
    names, w, euler = arkit_table(motion, identity)
    doc = {
        "format": "arkit-blendshapes", "fps": fps, "frame_count": int(len(w)), "names": names,
        "weights": np.round(w, 4).tolist(),
        "head_rotation": {"columns": list(HEAD_COLUMNS), "units": "radians", "order": "xyz",
                          "values": np.round(euler, 5).tolist()},
        "source": "A²-LLM 58-D motion mapped through the human head's ARKit slot map (a2llm.head.human)",
    }
    path = Path(path)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def write_arkit_csv(path: str | Path, motion: np.ndarray, identity: str | None = None, fps: int = FPS) -> Path:
    """ARKit-52 weights per frame as CSV: ``frame, time_s, <52 names>, headPitch, headYaw, headRoll``."""
    names, w, euler = arkit_table(motion, identity)
    path = Path(path)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["frame", "time_s", *names, *HEAD_COLUMNS])
        for t in range(len(w)):
            out.writerow([t, f"{t / fps:.3f}", *(f"{x:.4f}" for x in w[t]), *(f"{x:.5f}" for x in euler[t])])
    return path


# ------------------------------------------------------------------------------------------------------------
# glTF binary
# ------------------------------------------------------------------------------------------------------------
_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class _Gltf:
    """Accumulates buffer views and accessors of one binary buffer."""

    def __init__(self):
        self.bin = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: np.ndarray, target: int | None = None) -> int:
        while len(self.bin) % 4:
            self.bin.append(0)
        raw = np.ascontiguousarray(data).tobytes()
        v = {"buffer": 0, "byteOffset": len(self.bin), "byteLength": len(raw)}
        if target is not None:
            v["target"] = target
        self.bin += raw
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, data: np.ndarray, target: int | None = None, minmax: bool = False) -> int:
        """Dense accessor of a [N] or [N, k] array (float32, uint16 or uint32)."""
        data = np.asarray(data)
        comp = {np.dtype(np.float32): _FLOAT, np.dtype(np.uint16): _USHORT, np.dtype(np.uint32): _UINT}[data.dtype]
        width = 1 if data.ndim == 1 else data.shape[1]
        acc = {"bufferView": self.view(data, target), "componentType": comp, "count": int(len(data)),
               "type": _TYPES[width]}
        if minmax:
            flat = data.reshape(len(data), -1)
            acc["min"], acc["max"] = flat.min(0).tolist(), flat.max(0).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def sparse_vec3(self, delta: np.ndarray) -> int:
        """Sparse VEC3 accessor (zeros but for the rows that move): morph targets touch a few vertices each."""
        delta = np.asarray(delta, np.float32)
        rows = np.flatnonzero(np.abs(delta).max(1) > 0).astype(np.uint32)
        acc = {"componentType": _FLOAT, "count": int(len(delta)), "type": "VEC3",
               "min": delta.min(0).tolist(), "max": delta.max(0).tolist()}
        if len(rows):
            acc["sparse"] = {"count": int(len(rows)),
                             "indices": {"bufferView": self.view(rows), "componentType": _UINT},
                             "values": {"bufferView": self.view(delta[rows])}}
        else:                                   # glTF needs count >= 1 for sparse: a dense zero view instead
            acc["bufferView"] = self.view(delta)
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    n = np.zeros_like(V)
    for k in range(3):
        np.add.at(n, F[:, k], fn)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def glb_morph_weights(motion: np.ndarray, head) -> tuple[list[str], np.ndarray]:
    """The .glb animation's morph weights: (target names, [T, 53]) — the head model's own linear weights, with
    jawOpen at 0 (the jaw bone opens the mouth) and jawCorrective = R_jaw[2, 1] (the pose corrective's feature)."""
    from a2llm.head.human import ARKIT_NAMES

    m = _check(motion)
    w = np.zeros((len(m), len(ARKIT_NAMES) + 1), np.float32)
    w[:, :len(ARKIT_NAMES)] = m[:, EXPR] @ head.slot_pos
    w[:, ARKIT_NAMES.index("eyeBlinkLeft")] += m[:, EYELIDS.start]
    w[:, ARKIT_NAMES.index("eyeBlinkRight")] += m[:, EYELIDS.start + 1]
    if len(m):
        w[:, -1] = Rotation.from_rotvec(m[:, JAW].astype(np.float64)).as_matrix()[:, 2, 1]
    return [*ARKIT_NAMES, "jawCorrective"], w


def write_glb(path: str | Path, motion: np.ndarray, identity: str | None = None, fps: int = FPS) -> Path:
    """The human head (``identity``) with ARKit morph targets, a skin and ``motion`` as its animation -> .glb."""
    from a2llm.head.base import JOINTS, PARENTS

    m = _check(motion)
    if len(m) == 0:
        raise ValueError("motion has no frames: nothing to animate")
    head = _human(identity)
    d = head.data
    V = np.asarray(d.template, np.float32)
    F = np.asarray(d.faces, np.int64)
    g = _Gltf()
    attrs = {"POSITION": g.accessor(V, _ARRAY_BUFFER, minmax=True),
             "NORMAL": g.accessor(_vertex_normals(V, F), _ARRAY_BUFFER),
             "COLOR_0": g.accessor(np.asarray(d.vertex_colors, np.float32), _ARRAY_BUFFER)}
    W = np.asarray(d.lbs_weights, np.float32)
    top = np.argsort(-W, axis=1)[:, :4]                     # glTF skins take 4 influences per vertex
    tw = np.take_along_axis(W, top, 1)
    tw /= tw.sum(1, keepdims=True)
    attrs["JOINTS_0"] = g.accessor(top.astype(np.uint16), _ARRAY_BUFFER)
    attrs["WEIGHTS_0"] = g.accessor(tw.astype(np.float32), _ARRAY_BUFFER)
    names, weights = glb_morph_weights(m, head)
    targets = [{"POSITION": g.sparse_vec3(head.units[k])} for k in range(len(names) - 1)]
    targets.append({"POSITION": g.sparse_vec3(head.jaw_corrective)})
    from a2llm.head.human import MATERIAL_ROUGHNESS

    materials, primitives = [], []
    for k, name in enumerate(head.materials):
        faces = F[head.face_material == k]
        if not len(faces):
            continue
        materials.append({"name": name, "pbrMetallicRoughness": {
            "baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0,
            "roughnessFactor": MATERIAL_ROUGHNESS.get(name, 0.6)}, "doubleSided": name in ("lashes", "mouth")})
        primitives.append({"attributes": attrs, "targets": targets, "material": len(materials) - 1, "mode": 4,
                           "indices": g.accessor(faces.reshape(-1).astype(np.uint32), _ELEMENT_ARRAY_BUFFER)})
    # Skeleton: joint nodes 1..5 (node 0 is the mesh), translations relative to the parent joint.
    J = np.asarray(head.joints, np.float32)
    joint_nodes = []
    for j, name in enumerate(JOINTS):
        node = {"name": name, "translation": (J[j] - (J[PARENTS[j]] if PARENTS[j] >= 0 else 0)).tolist()}
        kids = [1 + c for c, p in enumerate(PARENTS) if p == j]
        if kids:
            node["children"] = kids
        joint_nodes.append(node)
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(JOINTS), 1, 1))
    ibm[:, :3, 3] = -J
    ibm_acc = g.accessor(ibm.transpose(0, 2, 1).reshape(len(JOINTS), 16))   # column-major MAT4
    # Animation: one sampler per channel on the shared clock.
    times = g.accessor(np.arange(len(m), dtype=np.float32) / fps, minmax=True)

    def quats(rotvec: np.ndarray) -> np.ndarray:
        return Rotation.from_rotvec(rotvec.astype(np.float64)).as_quat().astype(np.float32)   # x, y, z, w

    glob_joint = 1 + JOINTS.index(d.global_joint)
    samplers = [{"input": times, "output": g.accessor(quats(m[:, GLOBAL])), "interpolation": "LINEAR"},
                {"input": times, "output": g.accessor(quats(m[:, JAW])), "interpolation": "LINEAR"},
                {"input": times, "output": g.accessor(weights.reshape(-1)), "interpolation": "LINEAR"}]
    channels = [{"sampler": 0, "target": {"node": glob_joint, "path": "rotation"}},
                {"sampler": 1, "target": {"node": 1 + JOINTS.index("jaw"), "path": "rotation"}},
                {"sampler": 2, "target": {"node": 0, "path": "weights"}}]
    doc = {
        "asset": {"version": "2.0", "generator": "a2llm.motion.export",
                  "copyright": "head: MakeHuman CC0 (checkpoints/human_head/LICENSE.md)"},
        "scene": 0, "scenes": [{"nodes": [0, 1]}],
        "nodes": [{"name": f"human_head_{head.identity}", "mesh": 0, "skin": 0}, *joint_nodes],
        "meshes": [{"name": "head", "primitives": primitives, "weights": [0.0] * len(names),
                    "extras": {"targetNames": names}}],
        "materials": materials,
        "skins": [{"joints": list(range(1, 1 + len(JOINTS))), "skeleton": 1, "inverseBindMatrices": ibm_acc}],
        "animations": [{"name": "motion", "samplers": samplers, "channels": channels}],
        "accessors": g.accessors, "bufferViews": g.views, "buffers": [{"byteLength": 0}],
    }
    while len(g.bin) % 4:
        g.bin.append(0)
    doc["buffers"][0]["byteLength"] = len(g.bin)
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(g.bin)))
        f.write(struct.pack("<I4s", len(js), b"JSON") + js)
        f.write(struct.pack("<I4s", len(g.bin), b"BIN\x00") + bytes(g.bin))
    return path


WRITERS = {"arkit-json": write_arkit_json, "arkit-csv": write_arkit_csv, "glb": write_glb}


def export_motion(motion: np.ndarray, out: str | Path, fmt: str, identity: str | None = None) -> Path:
    """Write ``motion`` [T, 58] as ``fmt`` (one of :data:`FORMATS`) to ``out``."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return WRITERS[fmt](out, motion, identity)


def export_all(motion: np.ndarray, stem: str | Path, identity: str | None = None) -> list[Path]:
    """Every format beside each other: ``STEM_arkit.json``, ``STEM_arkit.csv``, ``STEM.glb``."""
    stem = Path(stem)
    return [write_arkit_json(stem.with_name(stem.name + "_arkit.json"), motion, identity),
            write_arkit_csv(stem.with_name(stem.name + "_arkit.csv"), motion, identity),
            write_glb(stem.with_name(stem.name + ".glb"), motion, identity)]


def main(argv: list[str] | None = None) -> int:
    from a2llm.head.human import IDENTITIES

    ap = argparse.ArgumentParser(
        prog="python -m a2llm.motion.export",
        description="Export a 58-D motion to ARKit-52 blendshape weights (JSON or CSV, 25 fps, Apple's names, "
                    "plus head pitch/yaw/roll) or to a .glb of the human head with ARKit morph targets, a jaw/neck "
                    "skin and the motion as its animation (Blender, three.js, Unreal).")
    ap.add_argument("motion", type=Path, help="motion file (.npz [T, 58], or any format a2llm.motion.importers reads)")
    ap.add_argument("--format", required=True, choices=FORMATS, help="output format")
    ap.add_argument("-o", "--out", type=Path, required=True, help="output file")
    ap.add_argument("--identity", default=None, choices=[i.name for i in IDENTITIES],
                    help="human head identity for the .glb (default: female)")
    ap.add_argument("--kind", default="auto", help="input format (default: auto-detect)")
    args = ap.parse_args(argv)
    from a2llm.motion.importers import import_motion
    from a2llm.motion.io import MotionClip

    try:
        clip = import_motion(args.motion, kind=args.kind)
        if not isinstance(clip, MotionClip):
            raise ValueError(f"{args.motion} holds mesh vertices, not 58-D motion parameters: nothing to map")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = export_motion(clip.motion, args.out, args.format, args.identity)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({args.format}, {clip.num_frames} frames, {out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
