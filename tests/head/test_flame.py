"""Real-FLAME loading, on a synthetic FLAME folder written in the real file formats (flame_fixture.py)."""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from smplx.lbs import lbs

from a2llm.head import HeadModel, flame, load_head_data
from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW, MOTION_DIM
from tests.head.flame_fixture import (MASK_KEYS, MODEL_KEYS, PY2_FLAME_GLOBALS, FlameFixture, ch, chumpy_object,
                                      pickle_globals, write_flame_fixture, write_legacy_pickle)

PKL, MASKS, LIDS = "generic_model.pkl", "FLAME_masks.pkl", ("l_eyelid.npy", "r_eyelid.npy")


_WRITABLE = flame._writable


@pytest.fixture(autouse=True)
def _no_npz_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a pickle caches a ~27 MB npz next to it; only the tests about caching let it."""
    monkeypatch.setattr(flame, "_writable", lambda folder: False)


def _drop_big_files(folder: Path) -> None:
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink() and f.stat().st_size > 1_000_000:
            f.unlink()


@pytest.fixture(autouse=True)
def _cleanup(tmp_path: Path) -> Iterator[None]:
    """pytest keeps recent tmp dirs; the model files are tens of MB, so drop them after each test."""
    yield
    _drop_big_files(tmp_path)


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlameFixture]:
    fixture = write_flame_fixture(tmp_path_factory.mktemp("flame_src"))
    yield fixture
    _drop_big_files(fixture.folder)


def _folder(fx: FlameFixture, dst: Path, names: tuple[str, ...], rename: dict[str, str] | None = None) -> Path:
    """A FLAME folder holding links to some of the fixture's files (the 74 MB pickle is written once)."""
    dst.mkdir(parents=True, exist_ok=True)
    for n in names:
        os.symlink(fx.folder / n, dst / (rename or {}).get(n, n))
    return dst


@pytest.fixture(scope="module")
def data(fx: FlameFixture, tmp_path_factory: pytest.TempPathFactory) -> flame.HeadData:
    folder = _folder(fx, tmp_path_factory.mktemp("flame_full"), (PKL, MASKS, *LIDS))
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("error")  # the fixture's landmarks are plausible: no warning expected
        mp.setattr(flame, "_writable", lambda folder: False)
        return flame.load_flame_data(folder)


def _motion(T: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros((T, MOTION_DIM), np.float32)
    m[:, EXPR] = rng.normal(size=(T, 50))
    m[:, JAW] = rng.normal(scale=0.2, size=(T, 3))
    m[:, GLOBAL] = rng.normal(scale=0.3, size=(T, 3))
    return m


def _reference(raw: dict[str, np.ndarray], motion: np.ndarray) -> np.ndarray:
    """smplx.lbs on the raw pickled arrays (float64), FLAME pose order: global, neck, jaw, eyes."""
    m = torch.tensor(motion, dtype=torch.float64)
    z = torch.zeros(len(m), 3, dtype=torch.float64)
    pose = torch.cat([m[:, GLOBAL], z, m[:, JAW], z, z], 1)
    parents = torch.tensor(raw["kintree_table"][0].astype(np.int64))
    parents[0] = -1
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    verts, _ = lbs(m[:, EXPR], pose, t(raw["v_template"])[None].expand(len(m), -1, -1),
                   t(raw["shapedirs"][:, :, 300:350]), t(raw["posedirs"].reshape(-1, 36).T),
                   t(raw["J_regressor"]), parents, t(raw["weights"]))
    return verts.numpy()


# --- the fixture really is in the Python-2 FLAME layout ---------------------------------------------------------
def test_fixture_pickle_has_the_python2_flame_layout(fx: FlameFixture) -> None:
    pkl = fx.folder / PKL
    assert pkl.read_bytes()[:2] == b"\x80\x02"  # protocol 2
    assert pickle_globals(pkl) == PY2_FLAME_GLOBALS
    raw = flame.safe_load_pickle(pkl)
    assert tuple(raw) == MODEL_KEYS
    assert isinstance(raw["J_regressor"], sp.csc_matrix)
    assert set(flame.safe_load_pickle(fx.folder / MASKS)) == set(MASK_KEYS)


# --- loading ------------------------------------------------------------------------------------------------------
def test_loader_builds_head_data_from_the_pickle(fx: FlameFixture, data: flame.HeadData) -> None:
    raw = fx.raw
    assert data.name == "flame2020" and data.vertex_colors is None
    assert data.template.shape == (5023, 3) and data.faces.shape == (9976, 3)
    np.testing.assert_array_equal(data.faces, raw["f"])
    np.testing.assert_allclose(data.template, raw["v_template"], atol=1e-7)
    np.testing.assert_allclose(data.expr_dirs, raw["shapedirs"][:, :, 300:350], atol=1e-9)
    np.testing.assert_allclose(data.J_regressor, raw["J_regressor"], atol=1e-7)
    np.testing.assert_allclose(data.lbs_weights, raw["weights"], atol=1e-7)
    np.testing.assert_array_equal(data.regions["lips"], fx.masks["lips"])
    np.testing.assert_array_equal(data.regions["face"], fx.masks["face"])
    np.testing.assert_array_equal(data.regions["upper_face"],
                                  np.union1d(fx.masks["eye_region"], fx.masks["forehead"]))
    assert data.landmarks == {"upper_lip": 3531, "lower_lip": 3504, "mouth_left": 2845, "mouth_right": 1730}


def test_posedirs_use_the_smplx_layout(fx: FlameFixture, data: flame.HeadData) -> None:
    raw = fx.raw["posedirs"]  # [V, 3, 36]
    assert data.posedirs.shape == (36, 5023 * 3)
    v, c, k = 3504, 1, 7
    assert data.posedirs[k, 3 * v + c] == pytest.approx(raw[v, c, k], abs=1e-9)
    np.testing.assert_allclose(data.posedirs, raw.reshape(-1, 36).T, atol=1e-9)


def test_vertices_equal_reference_lbs_on_raw_arrays(fx: FlameFixture, data: flame.HeadData) -> None:
    motion = _motion()
    ours = HeadModel(data).vertices(motion)
    np.testing.assert_allclose(ours, _reference(fx.raw, motion), atol=2e-6)


def test_canonical_ignores_global_rotation(fx: FlameFixture, data: flame.HeadData) -> None:
    motion = _motion()
    head = HeadModel(data)
    no_rot = motion.copy()
    no_rot[:, GLOBAL] = 0
    np.testing.assert_array_equal(head.vertices(motion, canonical=True), head.vertices(no_rot))
    assert not np.allclose(head.vertices(motion), head.vertices(no_rot), atol=1e-3)


def test_expression_and_jaw_move_the_right_vertices(fx: FlameFixture, data: flame.HeadData) -> None:
    head = HeadModel(data)
    rest = head.vertices(np.zeros((1, MOTION_DIM), np.float32))[0]
    for k, support in fx.expr_support.items():
        m = np.zeros((1, MOTION_DIM), np.float32)
        m[0, k] = 2.0
        moved = np.flatnonzero(np.abs(head.vertices(m)[0] - rest).max(1) > 1e-7)
        assert len(moved) > 0 and set(moved) <= set(support)
    m = np.zeros((1, MOTION_DIM), np.float32)
    m[0, JAW] = (0.3, 0, 0)  # open the jaw
    moved = set(np.flatnonzero(np.abs(head.vertices(m)[0] - rest).max(1) > 1e-7))
    assert moved == set(fx.jaw_vertices)
    assert data.landmarks["lower_lip"] in moved and data.landmarks["upper_lip"] not in moved


def test_smplx_flame_class_agrees(fx: FlameFixture, data: flame.HeadData, tmp_path: Path) -> None:
    """smplx's own FLAME, built from the raw arrays (npz variant: no chumpy), gives the same mesh."""
    import smplx

    np.savez(tmp_path / "FLAME_NEUTRAL.npz", **{k: fx.raw[k] for k in flame.MODEL_KEYS})  # the raw layout
    with open(tmp_path / "flame_static_embedding.pkl", "wb") as fh:  # smplx insists on a landmark embedding
        pickle.dump({"lmk_face_idx": np.zeros(51, np.int64), "lmk_b_coords": np.full((51, 3), 1 / 3)}, fh)
    model = smplx.FLAME(model_path=str(tmp_path), ext="npz", num_expression_coeffs=50, batch_size=3)
    motion = _motion()
    t = lambda s: torch.from_numpy(motion[:, s].copy())  # noqa: E731
    with torch.no_grad():
        theirs = model(expression=t(EXPR), jaw_pose=t(JAW), global_orient=t(GLOBAL)).vertices.numpy()
    np.testing.assert_allclose(HeadModel(data).vertices(motion), theirs, atol=1e-6)
    np.testing.assert_array_equal(model.posedirs.numpy(), data.posedirs)


def test_identity_shape_is_baked_into_the_template(fx: FlameFixture, tmp_path: Path) -> None:
    folder = _folder(fx, tmp_path / "f", (PKL, MASKS))
    betas = np.linspace(-1, 1, 10)
    shaped = flame.load_flame_data(folder, shape=betas)
    expected = fx.raw["v_template"] + fx.raw["shapedirs"][:, :, :10] @ betas
    np.testing.assert_allclose(shaped.template, expected, atol=1e-6)
    with pytest.raises(ValueError, match="at most 300"):
        flame.load_flame_data(folder, shape=np.zeros(301))


# --- eyelids ------------------------------------------------------------------------------------------------------
def test_eyelids_present_close_the_lids(fx: FlameFixture, data: flame.HeadData) -> None:
    np.testing.assert_allclose(data.eyelid_dirs, fx.eyelids, atol=1e-9)
    m = np.zeros((1, MOTION_DIM), np.float32)
    m[0, EYELIDS] = (1.0, 0.0)  # close the left lid
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        closed = HeadModel(data).vertices(m)[0]
    np.testing.assert_allclose(closed, data.template + fx.eyelids[0], atol=1e-6)


def test_eyelids_absent_warns_exactly_once(fx: FlameFixture, tmp_path: Path) -> None:
    data = flame.load_flame_data(_folder(fx, tmp_path / "f", (PKL, MASKS)))
    assert data.eyelid_dirs is None
    head = HeadModel(data)
    m = np.zeros((2, MOTION_DIM), np.float32)
    m[:, EYELIDS] = 0.5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        head.vertices(m)
        head.vertices(m)
    assert len([w for w in caught if "eyelid" in str(w.message)]) == 1


def test_a_single_eyelid_file_is_an_error(fx: FlameFixture, tmp_path: Path) -> None:
    folder = _folder(fx, tmp_path / "f", (PKL, MASKS, LIDS[0]))
    with pytest.raises(FileNotFoundError, match="r_eyelid.npy"):
        flame.load_flame_data(folder)


# --- missing files ------------------------------------------------------------------------------------------------
def test_missing_model_says_what_to_download_and_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        flame.load_flame_data(tmp_path)
    msg = str(err.value)
    for needle in ("generic_model.pkl", "flame2023_Open.pkl", "https://flame.is.tue.mpg.de", "CC-BY-4.0",
                   "checkpoints/flame/", str(tmp_path)):
        assert needle in msg


def test_missing_masks_say_the_metrics_need_them(fx: FlameFixture, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        flame.load_flame_data(_folder(fx, tmp_path / "f", (PKL,)))
    msg = str(err.value)
    assert "FLAME_masks.pkl" in msg and "FLAME Vertex Masks" in msg and "metrics" in msg


# --- the unpickler is a whitelist ---------------------------------------------------------------------------------
@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"), ("subprocess", "Popen"),
                                         ("__builtin__", "eval"), ("builtins", "exec"), ("numpy", "load"),
                                         ("copyreg", "add_extension")])
def test_unpickler_refuses_code_execution(tmp_path: Path, module: str, name: str) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(f"c{module}\n{name}\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
        flame.safe_load_pickle(path)
    assert not marker.exists()


def test_refused_payload_would_run_under_plain_pickle(tmp_path: Path) -> None:
    """Positive control: the same kind of payload does act when loaded with plain pickle."""
    marker = tmp_path / "created"
    path = tmp_path / "p.pkl"
    path.write_bytes(f"c__builtin__\nopen\n(S'{marker}'\nS'w'\ntR.".encode())
    with pytest.raises(pickle.UnpicklingError, match="__builtin__.open"):
        flame.safe_load_pickle(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes(), encoding="latin1").close()  # plain pickle calls open(marker, 'w')
    assert marker.exists()


def test_nested_chumpy_arrays_load_and_expressions_are_refused(tmp_path: Path) -> None:
    arr = np.arange(6.0).reshape(2, 3)
    write_legacy_pickle(tmp_path / "ok.pkl", {"a": ch(ch(arr)), "b": ch(arr)})
    out = flame.safe_load_pickle(tmp_path / "ok.pkl")
    np.testing.assert_array_equal(out["a"], arr)
    np.testing.assert_array_equal(out["b"], arr)
    lazy = chumpy_object({"a": ch(arr), "b": ch(arr), "_dirty_vars": set()}, "chumpy.ch_ops", "add")
    write_legacy_pickle(tmp_path / "lazy.pkl", {"v": lazy})
    with pytest.raises(pickle.UnpicklingError, match="chumpy.ch_ops.add"):
        flame.safe_load_pickle(tmp_path / "lazy.pkl")


@pytest.mark.parametrize("cls", ["csc_matrix", "csr_matrix", "coo_matrix", "csc_array"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_sparse_matrices_pickled_by_current_scipy(tmp_path: Path, cls: str, protocol: int) -> None:
    dense = np.zeros((5, 9))
    dense[[0, 2, 4], [1, 8, 3]] = (0.5, 0.25, 1.0)
    path = tmp_path / "s.pkl"
    path.write_bytes(pickle.dumps({"J": getattr(sp, cls)(dense)}, protocol=protocol))
    out = flame.safe_load_pickle(path)["J"]
    assert sp.issparse(out)
    np.testing.assert_array_equal(out.toarray(), dense)


# --- conversion / caching -----------------------------------------------------------------------------------------
def test_convert_and_reload_gives_identical_vertices(fx: FlameFixture, data: flame.HeadData, tmp_path: Path) -> None:
    out = flame.convert_flame_pkl(fx.folder / PKL, tmp_path / "conv" / "flame2020.npz")
    assert flame.is_flame_npz(out) and not flame.is_flame_npz(fx.folder / "l_eyelid.npy")
    folder = _folder(fx, tmp_path / "conv", (MASKS, *LIDS))
    motion = _motion(seed=3)
    expected = HeadModel(data).vertices(motion)
    for spec in (folder, out):  # the folder, or the npz path itself
        np.testing.assert_array_equal(HeadModel(flame.load_flame_data(spec)).vertices(motion), expected)


def test_pickle_is_cached_as_npz_next_to_it(fx: FlameFixture, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flame, "_writable", _WRITABLE)
    folder = _folder(fx, tmp_path / "f", (PKL, MASKS))
    first = flame.load_flame_data(folder)
    assert flame.is_flame_npz(folder / "flame2020.npz")
    os.remove(folder / PKL)  # the second load can only come from the cache
    second = flame.load_flame_data(folder)
    np.testing.assert_array_equal(first.template, second.template)
    np.testing.assert_array_equal(first.posedirs, second.posedirs)


def test_read_only_folder_loads_without_cache(fx: FlameFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(fx, tmp_path / "f", (PKL, MASKS))
    monkeypatch.setattr(flame.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(flame, "_writable", _WRITABLE)  # the real check, seeing a read-only folder
    assert flame.load_flame_data(folder).name == "flame2020"
    assert not (folder / "flame2020.npz").exists()


def test_flame2023_open_is_read_with_the_same_unpickler(fx: FlameFixture, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flame, "_writable", _WRITABLE)
    folder = _folder(fx, tmp_path / "f", (PKL, MASKS), rename={PKL: "flame2023_Open.pkl"})
    assert flame.load_flame_data(folder).name == "flame2023"
    assert (folder / "flame2023.npz").exists()


def test_npz_with_a_different_kinematic_tree_is_rejected(tmp_path: Path) -> None:
    V = 12  # shapes only need to agree with each other
    arrays = {"v_template": np.zeros((V, 3)), "f": np.array([[0, 1, 2]]), "shapedirs": np.zeros((V, 3, 350)),
              "posedirs": np.zeros((36, V * 3)), "J_regressor": np.full((5, V), 1 / V),
              "weights": np.full((V, 5), 0.2), "kintree_table": np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]])}
    np.savez(tmp_path / "ok.npz", name=np.array("flame2020"), flame_npz_version=np.array(1), **arrays)
    assert flame.read_flame_npz(tmp_path / "ok.npz")[1] == "flame2020"
    arrays["kintree_table"] = np.array([[-1, 0, 1, 2, 1], [0, 1, 2, 3, 4]])  # left eye hung on the jaw
    np.savez(tmp_path / "bad.npz", name=np.array("flame2020"), flame_npz_version=np.array(1), **arrays)
    with pytest.raises(ValueError, match="kintree_table"):
        flame.read_flame_npz(tmp_path / "bad.npz")


def test_mouth_corners_are_labelled_from_the_template() -> None:
    template = np.zeros((5023, 3))
    template[1730, 0], template[2845, 0] = 0.03, -0.03
    lm = flame.mouth_landmarks(template)
    assert (lm["mouth_left"], lm["mouth_right"]) == (1730, 2845)


# --- command line and the package entry point ---------------------------------------------------------------------
def test_cli_convert_and_check(fx: FlameFixture, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli" / "flame2020.npz"
    assert flame.main(["convert", str(fx.folder / PKL), "--out", str(out)]) == 0
    assert flame.is_flame_npz(out)
    _folder(fx, tmp_path / "cli", (MASKS,))
    capsys.readouterr()
    assert flame.main(["check", str(tmp_path / "cli")]) == 0
    report = capsys.readouterr().out
    assert "[x] flame2020.npz" in report and "[ ] generic_model.pkl" in report and "loadable: flame2020" in report
    assert flame.main(["check", str(tmp_path / "empty")]) == 1
    assert "not loadable" in capsys.readouterr().out
    assert flame.main(["convert", str(tmp_path / "missing.pkl")]) == 2
    assert "missing.pkl" in capsys.readouterr().err


def test_load_head_data_accepts_a_flame_folder(fx: FlameFixture, tmp_path: Path) -> None:
    assert load_head_data(_folder(fx, tmp_path / "f", (PKL, MASKS))).name == "flame2020"
