"""The open default head: committed asset = generator output, and it behaves like a FLAME head."""
import numpy as np
import pytest
import torch

from a2llm.head import OPEN_HEAD_PATH, HeadData, HeadModel, load_head
from a2llm.head.open_head import EXPRESSION_NAMES, build_open_head


@pytest.fixture(scope="module")
def head() -> HeadModel:
    return load_head("open")


def motion(**kw) -> np.ndarray:
    m = np.zeros((1, 58), np.float32)
    for k, v in kw.items():
        m[0, {"jaw": 50, "lid_l": 56, "lid_r": 57, "yaw": 54}[k] if not k.startswith("e") else int(k[1:])] = v
    return m


def test_committed_asset_matches_generator():
    fresh = build_open_head()
    saved = HeadData.load_npz(OPEN_HEAD_PATH)
    assert fresh.name == saved.name
    np.testing.assert_array_equal(fresh.faces, saved.faces)
    for key in ("template", "expr_dirs", "J_regressor", "lbs_weights", "eyelid_dirs", "vertex_colors"):
        np.testing.assert_allclose(getattr(fresh, key), getattr(saved, key), atol=1e-6, err_msg=key)
    assert fresh.regions.keys() == saved.regions.keys()
    for k in fresh.regions:
        np.testing.assert_array_equal(fresh.regions[k], saved.regions[k])
    assert fresh.landmarks == saved.landmarks


def test_size_and_units(head):
    assert 3000 <= head.num_vertices <= 6000
    v = head.neutral()
    skin = v[head.regions["skin"]]
    face = v[head.regions["face"]]
    crown_to_chin = skin[:, 1].max() - face[:, 1].min()
    assert 0.18 < crown_to_chin < 0.24, crown_to_chin          # metres, like FLAME
    assert 0.12 < skin[:, 0].max() - skin[:, 0].min() < 0.18
    # Left/right symmetric: every vertex has a mirror twin.
    from scipy.spatial import cKDTree
    d, _ = cKDTree(v).query(v * [-1, 1, 1])
    assert d.max() < 1e-6


def test_rig_is_normalised(head):
    assert torch.allclose(head.lbs_weights.sum(1), torch.ones(head.num_vertices), atol=1e-5)
    assert torch.allclose(head.J_regressor.sum(1), torch.ones(5), atol=1e-5)


def opening_mm(head, m) -> float:
    v = head.vertices(m)[0]
    return 1000 * np.linalg.norm(v[head.landmarks["upper_lip"]] - v[head.landmarks["lower_lip"]])


def test_mouth_closed_at_rest_and_jaw_opens_it(head):
    assert opening_mm(head, motion()) < 0.1
    assert opening_mm(head, motion(jaw=0.1)) > 5.0
    assert opening_mm(head, motion(jaw=0.3)) > 18.0
    v0, v1 = head.vertices(np.concatenate([motion(), motion(jaw=0.3)]))
    moved = np.linalg.norm(v1 - v0, axis=1) > 1e-4
    upper_face = head.regions["upper_face"]
    assert not moved[upper_face].any(), "jaw must not move the upper face"
    assert moved[head.regions["teeth"]].any() and moved[head.landmarks["lower_lip"]]


def test_eyelids_close_each_eye(head):
    for col, eye in (("lid_l", "left"), ("lid_r", "right")):
        v0, v1 = head.vertices(np.concatenate([motion(), motion(**{col: 1.0})]))
        moved = np.linalg.norm(v1 - v0, axis=1)
        region = head.regions[f"{eye}_eye_region"]
        other = head.regions[f"{'right' if eye == 'left' else 'left'}_eye_region"]
        assert moved[region].max() > 0.006 and moved[other].max() == 0.0
        # The closed lid stays in front of the eyeball (never cuts through it), half-way too.
        ball = head.neutral()[head.regions[f"{eye}_eyeball"]]
        c, r = ball.mean(0), np.linalg.norm(ball - ball.mean(0), axis=1).mean()
        for v in (v1, head.vertices(motion(**{col: 0.5}))[0]):
            lid = v[region]
            front = lid[:, 2] > c[2]
            assert np.linalg.norm(lid[front] - c, axis=1).min() > r


@pytest.mark.parametrize("name,region,axis,sign", [
    ("smile", "lips", 1, +1), ("brow_raise", "forehead", 1, +1), ("mouth_corner_down", "lips", 1, -1),
    ("brow_furrow", "upper_face", 1, -1), ("pucker", "lips", 2, +1), ("cheek_raise", "face", 1, +1)])
def test_semantic_bases_move_their_region(head, name, region, axis, sign):
    k = EXPRESSION_NAMES.index(name)
    d = head.expr_dirs[:, :, k].numpy()
    idx = head.regions[region]
    strongest = idx[np.argmax(np.abs(d[idx, axis]))]
    assert sign * d[strongest, axis] > 0.002                  # ≥ 2 mm per unit coefficient
    assert np.abs(d[head.regions["scalp"]]).max() < 1e-4       # expressions leave the skull alone


def test_all_fifty_bases_are_distinct_and_small(head):
    E = head.expr_dirs.reshape(-1, 50).numpy()
    norms = np.linalg.norm(E, axis=0)
    assert (norms > 0).all()
    cos = (E.T @ E) / np.outer(norms, norms)
    assert np.abs(cos - np.eye(50)).max() < 0.99
    assert np.abs(E).max() < 0.01                              # < 1 cm per unit


def test_canonical_space_removes_global_rotation(head):
    m = motion(jaw=0.2, yaw=0.7, e0=1.0)
    posed = head.vertices(m)[0]
    canon = head.vertices(m, canonical=True)[0]
    m[0, 53:56] = 0
    np.testing.assert_allclose(canon, head.vertices(m)[0], atol=1e-7)
    assert np.abs(posed - canon).max() > 0.02


def test_forward_is_differentiable_and_batched(head):
    m = torch.zeros(2, 3, 58, requires_grad=True)
    v = head(m, canonical=True)
    assert v.shape == (2, 3, head.num_vertices, 3)
    v[..., head.landmarks["lower_lip"], 1].sum().backward()
    assert m.grad[..., 50].abs().sum() > 0


def test_bad_motion_shape(head):
    with pytest.raises(ValueError, match="58"):
        head(torch.zeros(3, 57))


@pytest.mark.parametrize("canonical", [True, False])
def test_skin_subset_equals_full_skinning(head, canonical):
    g = torch.Generator().manual_seed(0)
    m = torch.randn(8, 58, generator=g) * 0.5
    m[:, 50:53] *= 0.4
    m[:, 56:58] = torch.rand(8, 2, generator=g)
    idx = torch.from_numpy(np.concatenate([head.regions["lips"], head.regions["upper_face"]]))
    full = head(m, canonical=canonical)[:, idx]
    assert torch.allclose(head.skin_subset(m, idx, canonical=canonical), full, atol=1e-6)
