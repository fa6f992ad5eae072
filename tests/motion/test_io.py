"""Tests for a2llm.motion.io: validation, safe loading, atomic saving, resampling."""
import zipfile

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import a2llm.motion.io as mio
from a2llm.motion.io import (
    MotionFormatError,
    load_motion,
    resample_motion,
    save_motion,
    validate_motion,
)
from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW

RNG = np.random.default_rng(0)


def _motion(T: int = 12) -> np.ndarray:
    m = RNG.normal(size=(T, 58)).astype(np.float32)
    # rotations below pi so their axis-angle form is canonical and round-trips through scipy
    for sl in (JAW, GLOBAL):
        m[:, sl] = Rotation.random(T, random_state=1).as_rotvec() * 0.8
    m[:, EYELIDS] = RNG.uniform(0, 1, size=(T, 2))
    return m


# --------------------------------------------------------------------------- save / load


def test_round_trip_with_audio(tmp_path):
    motion = _motion(20)
    audio = RNG.normal(size=16000).astype(np.float64) * 0.1
    path = save_motion(tmp_path / "clip.npz", motion, audio=audio, sample_rate=16000)
    clip = load_motion(path)
    assert clip.motion.dtype == np.float32 and clip.motion.flags.c_contiguous
    np.testing.assert_array_equal(clip.motion, motion)
    assert clip.fps == 25 and isinstance(clip.fps, int)
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (16000,)
    np.testing.assert_array_equal(clip.audio, audio.astype(np.float32))
    assert clip.sample_rate == 16000 and isinstance(clip.sample_rate, int)
    with np.load(path, allow_pickle=False) as raw:
        assert set(raw.files) == {"motion", "fps", "audio", "sample_rate"}
        assert raw["motion"].dtype == np.float32 and raw["fps"].dtype.kind == "i" and int(raw["fps"]) == 25


def test_round_trip_without_audio_and_float64_input(tmp_path):
    motion = _motion(5).astype(np.float64)
    clip = load_motion(save_motion(tmp_path / "sub" / "clip.npz", motion))  # parent folder is created
    np.testing.assert_array_equal(clip.motion, motion.astype(np.float32))
    assert clip.audio is None and clip.sample_rate is None
    assert clip.num_frames == 5 and clip.duration_s == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs, match", [
    ({"audio": np.zeros((2, 100)), "sample_rate": 16000}, r"mono with shape \(N,\)"),
    ({"audio": np.array([0.0, np.nan, 0.0]), "sample_rate": 16000}, "non-finite"),
    ({"audio": np.zeros(100)}, "without a sample_rate"),
    ({"sample_rate": 16000}, "without audio"),
    ({"audio": np.zeros(100), "sample_rate": 0}, "positive integer"),
    ({"audio": np.zeros(100), "sample_rate": 16000.5}, "positive integer"),
    ({"fps": 30}, "30 fps"),
])
def test_save_refuses_bad_input(tmp_path, kwargs, match):
    with pytest.raises(MotionFormatError, match=match):
        save_motion(tmp_path / "x.npz", _motion(4), **kwargs)
    assert not any(tmp_path.iterdir())


def test_save_is_atomic(tmp_path, monkeypatch):
    path = save_motion(tmp_path / "clip.npz", _motion(4))
    original = load_motion(path).motion

    def crash_midway(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(mio.np, "savez", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        save_motion(path, _motion(9))
    monkeypatch.undo()
    np.testing.assert_array_equal(load_motion(path).motion, original)  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npz"]  # no temp file left behind


# --------------------------------------------------------------------------- validate_motion


@pytest.mark.parametrize("shape, match", [
    ((10, 57), r"expected|\(T, 58\), got \(10, 57\)"),
    ((10, 106), "ARTalk"),
    ((3, 5023, 3), "FLAME-topology vertex sequence"),
    ((3, 100, 3), "vertex sequence"),
    ((58,), r"single frame.*motion\[None\]"),
])
def test_validate_wrong_shape(shape, match):
    with pytest.raises(MotionFormatError, match=r"\(T, 58\)") as err:
        validate_motion(np.zeros(shape, np.float32))
    assert str(shape) in str(err.value)
    assert err.match(match)


def test_validate_empty():
    with pytest.raises(MotionFormatError, match="no frames"):
        validate_motion(np.zeros((0, 58)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_non_finite_counts_and_first_frame(bad):
    m = _motion(10)
    m[7, 3] = bad
    m[3, 50] = bad
    with pytest.raises(MotionFormatError, match="2 non-finite value.*first is at frame 3"):
        validate_motion(m)


def test_validate_float64_overflow_is_not_silently_inf():
    m = _motion(4).astype(np.float64)
    m[2, 0] = 1e300
    with pytest.raises(MotionFormatError, match="1 non-finite.*frame 2"):
        validate_motion(m)


@pytest.mark.parametrize("arr", [
    np.full((4, 58), "a"), np.zeros((4, 58), dtype=object), np.zeros((4, 58), dtype=bool),
    np.zeros((4, 58), dtype=np.complex64),
])
def test_validate_non_numeric(arr):
    with pytest.raises(MotionFormatError, match="real numbers"):
        validate_motion(arr)


def test_validate_fps():
    with pytest.raises(MotionFormatError, match=r"30 fps.*25 fps.*resample_motion"):
        validate_motion(_motion(4), fps=30)
    with pytest.raises(MotionFormatError, match="positive"):
        validate_motion(_motion(4), fps=-25)


def test_validate_returns_contiguous_float32():
    m = np.asfortranarray(_motion(6).astype(np.float64))
    out = validate_motion(m, fps=25.0)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, m.astype(np.float32))
    assert issubclass(MotionFormatError, ValueError)


# --------------------------------------------------------------------------- load errors


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_motion(tmp_path / "nope.npz")


def test_load_not_a_zip(tmp_path):
    p = tmp_path / "garbage.npz"
    p.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(MotionFormatError, match="not an .npz archive"):
        load_motion(p)
    q = tmp_path / "array.npz"
    with open(q, "wb") as f:
        np.save(f, _motion(3))
    with pytest.raises(MotionFormatError, match="bare .npy array"):
        load_motion(q)


def test_load_corrupt_member(tmp_path):
    path = save_motion(tmp_path / "clip.npz", _motion(50))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("motion.npy")
    mid = info.header_offset + 200 + info.file_size // 2  # inside the stored motion bytes
    data[mid:mid + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(MotionFormatError, match="corrupt"):
        load_motion(path)


def test_load_truncated(tmp_path):
    path = save_motion(tmp_path / "clip.npz", _motion(50))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(MotionFormatError):
        load_motion(path)


def test_load_missing_motion_key_lists_keys(tmp_path):
    p = tmp_path / "other.npz"
    np.savez(p, expression=np.zeros((3, 50)), fps=25)
    with pytest.raises(MotionFormatError, match=r"no 'motion'.*\['expression', 'fps'\]"):
        load_motion(p)


def test_load_bad_shape_names_file(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, motion=np.zeros((3, 57), np.float32), fps=25)
    with pytest.raises(MotionFormatError, match=r"bad.npz.*\(T, 58\), got \(3, 57\)"):
        load_motion(p)


def test_load_other_fps_points_to_importer(tmp_path):
    p = tmp_path / "fast.npz"
    np.savez(p, motion=_motion(4), fps=50)
    with pytest.raises(MotionFormatError, match="50 fps.*import_motion"):
        load_motion(p)


TRIPPED = []


def _trip():
    TRIPPED.append(True)
    return "unpickled!"


class Tripwire:
    """Unpickling this calls _trip(): proof that a loader ran pickle."""

    def __reduce__(self):
        return (_trip, ())


def test_load_refuses_pickled_object_array(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, motion=np.array([Tripwire()], dtype=object), fps=25)  # np.savez pickles object arrays
    with pytest.raises(MotionFormatError, match="pickle.*refused"):
        load_motion(p)
    assert TRIPPED == []


# --------------------------------------------------------------------------- resampling


def test_resample_identity():
    m = _motion(7)
    out = resample_motion(m, 25, 25)
    np.testing.assert_array_equal(out, m)
    assert out is not m


@pytest.mark.parametrize("T, T_out", [(10, 5), (9, 5)])
def test_resample_50_to_25_keeps_even_frames(T, T_out):
    m = _motion(T)
    out = resample_motion(m, 50, 25)
    assert out.shape == (T_out, 58) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, EXPR], m[::2, EXPR], atol=1e-6)
    np.testing.assert_allclose(out[:, EYELIDS], m[::2, EYELIDS], atol=1e-6)
    np.testing.assert_allclose(out[:, JAW], m[::2, JAW], atol=1e-5)
    np.testing.assert_allclose(out[:, GLOBAL], m[::2, GLOBAL], atol=1e-5)


def test_resample_upsample_linear_midpoints():
    m = _motion(4)
    out = resample_motion(m, 25, 50)
    assert out.shape == (8, 58)
    np.testing.assert_allclose(out[1, EXPR], (m[0, EXPR] + m[1, EXPR]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[7], m[3], atol=1e-5)  # past the last frame: held


def test_resample_slerp_coaxial_midpoint():
    m = np.zeros((2, 58), np.float32)
    m[:, GLOBAL] = [[0, 0, 0.2], [0, 0, 1.0]]
    m[:, JAW] = [[0.1, 0, 0], [0.5, 0, 0]]
    out = resample_motion(m, 25, 50)
    np.testing.assert_allclose(out[1, GLOBAL], [0, 0, 0.6], atol=1e-6)
    np.testing.assert_allclose(out[1, JAW], [0.3, 0, 0], atol=1e-6)


def test_resample_slerp_is_geodesic_for_different_axes():
    m = np.zeros((2, 58), np.float32)
    m[:, GLOBAL] = [[2.5, 0, 0], [0, 2.5, 0]]
    out = resample_motion(m, 25, 50)
    a, b = Rotation.from_rotvec(m[:, GLOBAL].astype(np.float64))
    mid = Rotation.from_rotvec(out[1, GLOBAL].astype(np.float64))
    total = (a.inv() * b).magnitude()
    assert (a.inv() * mid).magnitude() == pytest.approx(total / 2, abs=1e-5)
    assert (mid.inv() * b).magnitude() == pytest.approx(total / 2, abs=1e-5)
    # averaging the axis-angle vectors would not be that rotation
    naive = Rotation.from_rotvec(m[:, GLOBAL].mean(axis=0))
    assert (naive.inv() * mid).magnitude() > 0.1
    assert np.all(np.linalg.norm(out[:, GLOBAL], axis=1) <= np.pi + 1e-6)


def test_resample_single_frame_and_bad_fps():
    m = _motion(1)
    out = resample_motion(m, 25, 50)
    assert out.shape == (2, 58)
    np.testing.assert_array_equal(out[1], m[0])
    for bad in (0, -5, float("nan"), "fast"):
        with pytest.raises(MotionFormatError, match="src_fps"):
            resample_motion(m, bad, 25)
    with pytest.raises(MotionFormatError, match="non-finite"):
        resample_motion(np.full((3, 58), np.nan), 50, 25)
