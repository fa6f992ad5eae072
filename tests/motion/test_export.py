"""Motion export round trips: ARKit-52 JSON/CSV (names, frames, values) and the .glb read back and re-skinned."""
import csv
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from a2llm.head import HeadModel
from a2llm.head.human import ARKIT_NAMES, load_human
from a2llm.motion.export import export_all, glb_morph_weights, main, write_arkit_csv, write_arkit_json, write_glb
from a2llm.motion.io import save_motion

T = 20

# Apple's ARFaceAnchor.BlendShapeLocation names (spelled out here, not imported, so a typo in the map shows).
APPLE_52 = """browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff cheekSquintLeft
cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft eyeLookDownRight eyeLookInLeft eyeLookInRight
eyeLookOutLeft eyeLookOutRight eyeLookUpLeft eyeLookUpRight eyeSquintLeft eyeSquintRight eyeWideLeft eyeWideRight
jawForward jawLeft jawOpen jawRight mouthClose mouthDimpleLeft mouthDimpleRight mouthFrownLeft mouthFrownRight
mouthFunnel mouthLeft mouthLowerDownLeft mouthLowerDownRight mouthPressLeft mouthPressRight mouthPucker mouthRight
mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthSmileLeft mouthSmileRight mouthStretchLeft
mouthStretchRight mouthUpperUpLeft mouthUpperUpRight noseSneerLeft noseSneerRight tongueOut""".split()


@pytest.fixture(scope="module")
def motion() -> np.ndarray:
    """A short speech-like motion: jaw, a smile, a blink, a head turn, micro-expressions, a negative coefficient."""
    rng = np.random.default_rng(3)
    t = np.arange(T) / 25
    m = np.zeros((T, 58), np.float32)
    m[:, 50] = 0.15 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    m[:, 0] = np.linspace(0, 2.5, T)                       # smile
    m[:, 9] = -0.8                                         # lower_lip_depress < 0 (labiodental)
    m[:, 16:50] = 0.1 * rng.normal(size=(T, 34))
    m[8:11, 56:58] = 1.0                                   # blink
    m[:, 54] = np.linspace(0, 0.3, T)                      # yaw
    m[:, 53] = 0.05
    return m


def test_arkit_json_has_apples_52_names_and_every_frame(motion, tmp_path):
    assert list(ARKIT_NAMES) == APPLE_52
    doc = json.loads(write_arkit_json(tmp_path / "m.json", motion).read_text())
    assert doc["names"] == APPLE_52 and doc["fps"] == 25 and doc["frame_count"] == T
    w = np.asarray(doc["weights"])
    assert w.shape == (T, 52) and w.min() >= 0 and w.max() <= 1
    col = {n: w[:, k] for k, n in enumerate(APPLE_52)}
    assert col["mouthSmileLeft"][-1] == pytest.approx(0.75, abs=0.01) and col["mouthSmileLeft"][0] == 0  # 2.5 x 0.3
    assert np.allclose(col["mouthSmileLeft"], col["mouthSmileRight"])
    assert col["eyeBlinkLeft"][9] == 1.0 and col["eyeBlinkLeft"][0] == 0
    assert col["jawOpen"].max() > 0.2 and col["mouthRollLower"].min() > 0.3           # negative slot routed
    assert col["tongueOut"].max() == 0
    head = np.asarray(doc["head_rotation"]["values"])
    assert head.shape == (T, 3) and head[-1, 1] == pytest.approx(0.3, abs=0.02)       # yaw


def test_arkit_csv_matches_json(motion, tmp_path):
    write_arkit_csv(tmp_path / "m.csv", motion)
    rows = list(csv.reader(open(tmp_path / "m.csv")))
    assert rows[0] == ["frame", "time_s", *APPLE_52, "headPitch", "headYaw", "headRoll"]
    assert len(rows) == T + 1 and rows[-1][1] == f"{(T - 1) / 25:.3f}"
    doc = json.loads(write_arkit_json(tmp_path / "m.json", motion).read_text())
    np.testing.assert_allclose(np.asarray(rows[1:], float)[:, 2:54], doc["weights"], atol=1e-4)


# --- a small glTF reader (the test must not trust the writer's own helpers) -----------------------------------
def read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    n, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    doc = json.loads(data[20:20 + n])
    m, kind2 = struct.unpack_from("<I4s", data, 20 + n)
    assert kind2 == b"BIN\x00"
    return doc, data[28 + n:28 + n + m]


def accessor(doc: dict, binary: bytes, k: int) -> np.ndarray:
    a = doc["accessors"][k]
    dtype = {5126: np.float32, 5123: np.uint16, 5125: np.uint32}[a["componentType"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a["type"]]

    def view(v, dt, count, w):
        bv = doc["bufferViews"][v]
        return np.frombuffer(binary, dt, count * w, bv["byteOffset"]).reshape(count, w)

    out = view(a["bufferView"], dtype, a["count"], width).copy() if "bufferView" in a \
        else np.zeros((a["count"], width), dtype)
    if "sparse" in a:
        s = a["sparse"]
        idx = view(s["indices"]["bufferView"], {5123: np.uint16, 5125: np.uint32}[s["indices"]["componentType"]],
                   s["count"], 1)[:, 0]
        out[idx] = view(s["values"]["bufferView"], dtype, s["count"], width)
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def test_glb_round_trip_reproduces_the_head_model(motion, tmp_path):
    path = write_glb(tmp_path / "m.glb", motion)
    doc, binary = read_glb(path)
    head = load_human()
    prims = doc["meshes"][0]["primitives"]
    names = doc["meshes"][0]["extras"]["targetNames"]
    assert names[:52] == APPLE_52 and names[52] == "jawCorrective"
    assert all(len(p["targets"]) == 53 for p in prims)
    assert {m["name"] for m in doc["materials"]} >= {"skin", "lips", "eyes", "teeth", "hair"}
    anim = doc["animations"][0]
    times = accessor(doc, binary, anim["samplers"][0]["input"])[:, 0]
    assert len(times) == T and times[-1] == pytest.approx((T - 1) / 25)
    weights = accessor(doc, binary, anim["samplers"][2]["output"]).reshape(T, 53)
    np.testing.assert_allclose(weights, glb_morph_weights(motion, head)[1], atol=1e-6)

    # Re-skin frame f from the file alone and compare with HeadModel's vertices.
    attrs = prims[0]["attributes"]
    V = accessor(doc, binary, attrs["POSITION"]).astype(np.float64)
    targets = np.stack([accessor(doc, binary, t["POSITION"]) for t in prims[0]["targets"]])
    joints, wts = accessor(doc, binary, attrs["JOINTS_0"]), accessor(doc, binary, attrs["WEIGHTS_0"])
    faces = np.concatenate([accessor(doc, binary, p["indices"])[:, 0] for p in prims])
    assert len(faces) == 3 * len(head.data.faces)
    nodes = doc["nodes"]
    skin = doc["skins"][0]
    ibm = accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    model = HeadModel(head.data)
    for f in (0, 9, T - 1):
        local = {}
        for ch in anim["channels"][:2]:
            q = accessor(doc, binary, anim["samplers"][ch["sampler"]]["output"])[f]
            local[ch["target"]["node"]] = quat_to_matrix(q)

        def world(i):
            M = np.eye(4)
            M[:3, 3] = nodes[i].get("translation", [0, 0, 0])
            M[:3, :3] = local.get(i, np.eye(3))
            return world(parent[i]) @ M if i in parent else M

        mats = np.stack([world(j) @ ibm[k] for k, j in enumerate(skin["joints"])])
        rest = V + np.einsum("k,kvc->vc", weights[f], targets)
        blend = np.einsum("vk,vkij->vij", wts, mats[joints.astype(int)])
        skinned = np.einsum("vij,vj->vi", blend[:, :3, :3], rest) + blend[:, :3, 3]
        ref = model.vertices(motion[f:f + 1])[0]
        assert np.abs(skinned - ref).max() < 2e-4, f


def test_glb_loads_in_trimesh(motion, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    scene = trimesh.load(write_glb(tmp_path / "m.glb", motion), force="scene")
    assert sum(len(g.vertices) for g in scene.geometry.values()) >= len(load_human().data.template)


def test_cli_and_export_all(motion, tmp_path, capsys):
    src = tmp_path / "turn_motion.npz"
    save_motion(src, motion)
    for fmt, name in (("arkit-json", "a.json"), ("arkit-csv", "a.csv"), ("glb", "a.glb")):
        assert main([str(src), "--format", fmt, "-o", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 0 and f"{T} frames" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.npz"), "--format", "glb", "-o", str(tmp_path / "x.glb")]) == 1
    assert "missing.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(src), "--format", "fbx", "-o", str(tmp_path / "x.fbx")])
    paths = export_all(motion, tmp_path / "turn", identity="male")
    assert [p.name for p in paths] == ["turn_arkit.json", "turn_arkit.csv", "turn.glb"]
    doc, _ = read_glb(paths[2])
    assert doc["nodes"][0]["name"].endswith("male")
