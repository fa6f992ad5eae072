"""Tests for a2llm.motion.importers on synthetic files written in each peer's layout."""
import numpy as np
import pytest
import torch

from a2llm.motion.importers import (
    IMPORTERS,
    detect_kind,
    import_motion,
    natural_key,
    read_arrays,
)
from a2llm.motion.io import MotionClip, MotionFormatError, VertexClip, save_motion
from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW

T = 6


def _coded(width: int, offset: float = 0.0) -> np.ndarray:
    """[T, width] where entry (t, c) = offset + c + t/100: every source cell is distinct and traceable.

    Values stay small enough (< 3.2 for the rotation blocks used below) that axis-angle stays canonical.
    """
    t = np.arange(T)[:, None] / 100.0
    return (offset + np.arange(width)[None, :] * 0.01 + t).astype(np.float32)


# --------------------------------------------------------------------------- ARTalk


def _artalk() -> np.ndarray:
    m = np.zeros((T, 106), np.float32)
    m[:, :100] = _coded(100, 10.0)
    m[:, 100:103] = _coded(3, 0.1)   # global rotation
    m[:, 103:106] = _coded(3, 0.5)   # jaw
    return m


def _check_artalk(clip, src):
    assert isinstance(clip, MotionClip) and clip.motion.shape == (T, 58) and clip.fps == 25
    np.testing.assert_array_equal(clip.motion[:, EXPR], src[:, :50])
    np.testing.assert_array_equal(clip.motion[:, GLOBAL], src[:, 100:103])
    np.testing.assert_array_equal(clip.motion[:, JAW], src[:, 103:106])
    np.testing.assert_array_equal(clip.motion[:, EYELIDS], 0.0)


@pytest.mark.parametrize("fmt", ["pt", "npy", "npz_motion", "npz_single"])
def test_artalk_formats(tmp_path, fmt):
    src = _artalk()
    if fmt == "pt":
        path = tmp_path / "x_motions.pt"
        torch.save(torch.from_numpy(src), path)  # what ARTalk's inference writes
    elif fmt == "npy":
        path = tmp_path / "x.npy"
        np.save(path, src)
    elif fmt == "npz_motion":
        path = tmp_path / "x.npz"
        np.savez(path, motion=src)
    else:
        path = tmp_path / "x.npz"
        np.savez(path, src)
    _check_artalk(import_motion(path), src)
    _check_artalk(import_motion(path, kind="artalk"), src)


def test_artalk_resampled_from_other_fps(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _artalk())
    clip = import_motion(path, fps=50)
    assert clip.motion.shape == (T // 2, 58)
    np.testing.assert_allclose(clip.motion[:, EXPR], _artalk()[::2, :50], atol=1e-6)


def test_artalk_wrong_width(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((T, 105), np.float32))
    with pytest.raises(MotionFormatError, match=r"\(T, 106\), got \(6, 105\)"):
        import_motion(path, kind="artalk")


_TRIPPED = []


def _trip():
    _TRIPPED.append(True)
    return "unpickled!"


class _Tripwire:
    def __reduce__(self):
        return (_trip, ())


def test_pt_with_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"motion": _Tripwire()}, path)
    with pytest.raises(MotionFormatError, match="weights_only=True"):
        import_motion(path)
    assert _TRIPPED == []


def test_pt_dict_of_tensors(tmp_path):
    path = tmp_path / "d.pt"
    torch.save({"motion": torch.from_numpy(_artalk()).to(torch.bfloat16)}, path)
    clip = import_motion(path)
    assert clip.motion.shape == (T, 58)
    np.testing.assert_allclose(clip.motion[:, GLOBAL], _artalk()[:, 100:103], rtol=1e-2)


# --------------------------------------------------------------------------- DiffPoseTalk


def test_diffposetalk_full_pose(tmp_path):
    exp, pose = _coded(50, 1.0), np.concatenate([_coded(3, 0.2), _coded(3, 0.7)], axis=1)
    path = tmp_path / "dpt.npz"
    np.savez(path, exp=exp, pose=pose, shape=np.ones(100, np.float32))
    clip = import_motion(path)
    np.testing.assert_array_equal(clip.motion[:, EXPR], exp)
    np.testing.assert_array_equal(clip.motion[:, GLOBAL], pose[:, :3])  # head rotation first
    np.testing.assert_array_equal(clip.motion[:, JAW], pose[:, 3:])     # jaw second
    np.testing.assert_array_equal(clip.motion[:, EYELIDS], 0.0)


def test_diffposetalk_jaw_only(tmp_path):
    exp, jaw = _coded(50, 1.0), _coded(3, 0.7)
    path = tmp_path / "dpt.npz"
    np.savez(path, exp=exp, pose=jaw)
    clip = import_motion(path, kind="diffposetalk")
    np.testing.assert_array_equal(clip.motion[:, JAW], jaw)
    np.testing.assert_array_equal(clip.motion[:, GLOBAL], 0.0)


@pytest.mark.parametrize("exp, pose, match", [
    (np.zeros((T, 50)), np.zeros((T, 4)), r"'pose' must have shape \(T, 6\) or \(T, 3\)"),
    (np.zeros((T, 49)), np.zeros((T, 6)), r"'exp' must have shape \(T, 50\)"),
    (np.zeros((T, 50)), np.zeros((T + 1, 6)), "disagree on the number of frames"),
])
def test_diffposetalk_bad_shapes(tmp_path, exp, pose, match):
    path = tmp_path / "dpt.npz"
    np.savez(path, exp=exp, pose=pose)
    with pytest.raises(MotionFormatError, match=match):
        import_motion(path)


def test_diffposetalk_missing_key(tmp_path):
    path = tmp_path / "dpt.npz"
    np.savez(path, exp=np.zeros((T, 50)))
    with pytest.raises(MotionFormatError, match=r"needs \['pose'\]"):
        import_motion(path, kind="diffposetalk")


# --------------------------------------------------------------------------- SMIRK


def _smirk_frame(i: int) -> dict:
    """One frame as SMIRK's encoder returns it (batch of 1), values encoding the frame number."""
    return {
        "expression_params": np.full((1, 50), i + 0.01, np.float32) + np.arange(50) * 1e-3,
        "pose_params": np.full((1, 3), i * 0.1 + 0.02, np.float32),
        "jaw_params": np.full((1, 3), i * 0.1 + 0.03, np.float32),
        "eyelid_params": np.array([[0.1 * i, 0.05 * i]], np.float32),
        "shape_params": np.ones((1, 300), np.float32),
        "cam": np.ones((1, 3), np.float32),
    }


def _check_smirk(clip, frame_ids):
    assert clip.motion.shape == (len(frame_ids), 58)
    for t, i in enumerate(frame_ids):
        f = _smirk_frame(i)
        np.testing.assert_allclose(clip.motion[t, EXPR], f["expression_params"][0], atol=1e-6)
        np.testing.assert_allclose(clip.motion[t, GLOBAL], f["pose_params"][0], atol=1e-6)
        np.testing.assert_allclose(clip.motion[t, JAW], f["jaw_params"][0], atol=1e-6)
        np.testing.assert_allclose(clip.motion[t, EYELIDS], f["eyelid_params"][0], atol=1e-6)


def test_smirk_folder_sorted_naturally(tmp_path):
    ids = [1, 2, 10, 3]  # written out of order; "frame_10" sorts before "frame_2" as text
    for i in ids:
        np.savez(tmp_path / f"frame_{i}.npz", **_smirk_frame(i))
    (tmp_path / "frame_1.png").write_bytes(b"not a frame file")
    clip = import_motion(tmp_path)
    _check_smirk(clip, sorted(ids))


def test_smirk_folder_unbatched_fields(tmp_path):
    for i in range(3):
        np.savez(tmp_path / f"{i:04d}.npz", **{k: v[0] for k, v in _smirk_frame(i).items()})
    _check_smirk(import_motion(tmp_path, kind="smirk"), [0, 1, 2])


def test_smirk_stacked_npz_and_fps(tmp_path):
    frames = [_smirk_frame(i) for i in range(T)]
    stacked = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
    path = tmp_path / "smirk.npz"
    np.savez(path, **stacked)
    _check_smirk(import_motion(path), list(range(T)))
    clip = import_motion(path, fps=30)  # a 30 fps video
    assert clip.motion.shape == (round(T * 25 / 30), 58)


def test_smirk_without_eyelids_keeps_eyes_open(tmp_path):
    f = _smirk_frame(2)
    del f["eyelid_params"]
    np.savez(tmp_path / "one.npz", **f)
    clip = import_motion(tmp_path / "one.npz")
    np.testing.assert_array_equal(clip.motion[:, EYELIDS], 0.0)
    np.testing.assert_allclose(clip.motion[0, JAW], 0.23, atol=1e-6)


def test_smirk_folder_errors(tmp_path):
    with pytest.raises(MotionFormatError, match="no .npz files"):
        import_motion(tmp_path)
    np.savez(tmp_path / "f1.npz", **_smirk_frame(1))
    bad = _smirk_frame(2)
    bad["jaw_params"] = np.zeros((1, 4), np.float32)
    np.savez(tmp_path / "f2.npz", **bad)
    with pytest.raises(MotionFormatError, match=r"f2.npz.*'jaw_params' has shape \(1, 4\)"):
        import_motion(tmp_path)


def test_natural_key():
    names = ["f10.npz", "f2.npz", "f1.npz", "g.npz", "f02b.npz"]
    assert sorted(names, key=natural_key) == ["f1.npz", "f2.npz", "f02b.npz", "f10.npz", "g.npz"]


# --------------------------------------------------------------------------- vertices


def _verts(T_=3, V=5023):
    rng = np.random.default_rng(0)
    return rng.normal(size=(T_, V, 3)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["npy", "vertices", "verts"])
def test_vertices(tmp_path, fmt):
    v = _verts()
    if fmt == "npy":
        path = tmp_path / "v.npy"
        np.save(path, v)
    else:
        path = tmp_path / "v.npz"
        np.savez(path, **{fmt: v})
    clip = import_motion(path)
    assert isinstance(clip, VertexClip) and clip.fps == 25
    np.testing.assert_array_equal(clip.vertices, v)


def test_vertices_topology_and_values(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, vertices=_verts(V=40))
    with pytest.raises(MotionFormatError, match="40 vertices.*5023.*allow_any_topology"):
        import_motion(path)
    assert import_motion(path, allow_any_topology=True).vertices.shape == (3, 40, 3)
    v = _verts()
    v[1, 7, 2] = np.nan
    np.savez(path, vertices=v)
    with pytest.raises(MotionFormatError, match="1 non-finite.*frame 1"):
        import_motion(path)
    np.savez(path, vertices=np.zeros((3, 5023, 2)))
    with pytest.raises(MotionFormatError, match=r"\(T, V, 3\)"):
        import_motion(path, kind="vertices")


def test_vertices_resampled(tmp_path):
    v = _verts(T_=4, V=10)
    path = tmp_path / "v.npz"
    np.savez(path, verts=v, fps=50)
    clip = import_motion(path, allow_any_topology=True)
    assert clip.vertices.shape == (2, 10, 3)
    np.testing.assert_allclose(clip.vertices, v[::2], atol=1e-6)


# --------------------------------------------------------------------------- a2llm files, detection


def test_a2llm_file_at_other_fps_is_resampled_with_audio(tmp_path):
    m = np.zeros((10, 58), np.float32)
    m[:, EXPR] = _coded(50)[0]
    m[:, 0] = np.arange(10)
    path = tmp_path / "fast.npz"
    np.savez(path, motion=m, fps=50, audio=np.zeros(800, np.float32), sample_rate=16000)
    clip = import_motion(path)
    assert clip.motion.shape == (5, 58) and clip.fps == 25
    np.testing.assert_array_equal(clip.motion[:, 0], [0, 2, 4, 6, 8])
    assert clip.audio.shape == (800,) and clip.sample_rate == 16000
    with pytest.raises(MotionFormatError, match="records 50 fps, but fps=25"):
        import_motion(path, fps=25)


def test_a2llm_file_round_trips(tmp_path):
    m = np.random.default_rng(1).normal(size=(7, 58)).astype(np.float32) * 0.3
    path = save_motion(tmp_path / "m.npz", m)
    clip = import_motion(path)
    np.testing.assert_array_equal(clip.motion, m)


@pytest.mark.parametrize("arrays, kind", [
    ({"exp": np.zeros((2, 50)), "pose": np.zeros((2, 6)), "shape": np.zeros(100)}, "diffposetalk"),
    ({"expression_params": np.zeros((2, 50)), "pose_params": np.zeros((2, 3))}, "smirk"),
    ({"verts": np.zeros((2, 5, 3))}, "vertices"),
    ({"arr_0": np.zeros((2, 5, 3))}, "vertices"),
    ({"arr_0": np.zeros((2, 106))}, "artalk"),
    ({"motion": np.zeros((2, 106)), "fps": np.array(25)}, "artalk"),
    ({"motion": np.zeros((2, 58)), "fps": np.array(25)}, "a2llm"),
    ({"arr_0": np.zeros((2, 58))}, "a2llm"),
])
def test_detect_kind(arrays, kind):
    assert detect_kind(arrays) == kind
    assert kind in IMPORTERS


@pytest.mark.parametrize("arrays", [
    {"a": np.zeros((2, 58)), "b": np.zeros((2, 58))},
    {"arr_0": np.zeros((2, 57))},
])
def test_detect_kind_fails_clearly(arrays):
    with pytest.raises(MotionFormatError, match="cannot tell what this is.*known kinds"):
        detect_kind(arrays)


def test_import_motion_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_motion(tmp_path / "missing.npz")
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 58)))
    with pytest.raises(MotionFormatError, match="unknown kind 'flame'"):
        import_motion(path, kind="flame")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(MotionFormatError, match="unsupported file type '.txt'"):
        read_arrays(tmp_path / "x.txt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(MotionFormatError, match="pickled data"):
        import_motion(tmp_path / "obj.npy")
