"""The tokenizer's reconstruction loss (paper Eq. 7-10): weights, the full-mesh velocity / acceleration terms
and their exact low-dimensional form, on a tiny synthetic head with a jaw, pose correctives and eyelids."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from a2llm.head import load_head
from a2llm.head.base import HeadData, HeadModel
from a2llm.motion.losses import LossWeights, MeshCoordinates, MotionLoss
from a2llm.motion.layout import EXPR, JAW

V = 24


def tiny_head_data(seed: int = 0) -> HeadData:
    """24 vertices: 8 static (no blendshape, no jaw weight), 8 on the jaw (weights 0.3 ... 1), 8 expression-only;
    the jaw has pose correctives, two vertices carry eyelid blendshapes."""
    rng = np.random.default_rng(seed)
    template = rng.uniform(-0.08, 0.08, (V, 3)).astype(np.float32)
    expr = (rng.normal(size=(V, 3, 50)) * 2e-3).astype(np.float32)
    expr[:8] = 0                                              # the static back of the head
    lbs = np.zeros((V, 5), np.float32)
    lbs[:, 0] = 1
    jaw = np.arange(8, 16)
    lbs[jaw, 2] = np.linspace(0.3, 1.0, len(jaw))
    lbs[jaw, 0] = 1 - lbs[jaw, 2]
    posedirs = np.zeros((36, V * 3), np.float32)
    posedirs[9:18] = rng.normal(size=(9, V * 3)) * 1e-3      # jaw correctives only (rows of joint 2)
    posedirs[9:18, :8 * 3] = 0
    lids = np.zeros((2, V, 3), np.float32)
    lids[0, 20, 1], lids[1, 21, 1] = -0.004, -0.004
    regressor = np.zeros((5, V), np.float32)
    regressor[np.arange(5), [0, 1, 2, 3, 4]] = 1
    regressor[2] = 0
    regressor[2, [16, 17]] = 0.5                             # the jaw joint moves with the expression
    return HeadData(name="tiny-loss-head", template=template, faces=np.array([[0, 1, 2], [8, 9, 10]]),
                    expr_dirs=expr, J_regressor=regressor, lbs_weights=lbs, posedirs=posedirs, eyelid_dirs=lids,
                    regions={"lips": np.arange(8, 12), "face": np.arange(8, 24), "upper_face": np.arange(18, 24)},
                    landmarks={"upper_lip": 8, "lower_lip": 9, "mouth_left": 10, "mouth_right": 11})


@pytest.fixture(scope="module")
def head() -> HeadModel:
    return HeadModel(tiny_head_data())


@pytest.fixture(scope="module")
def loss(head) -> MotionLoss:
    return MotionLoss(head)


def motion(B: int, T: int, seed: int = 0, jaw: str = "moving") -> torch.Tensor:
    """[B, T, 58] smooth motion: slow expression curves, a jaw that opens and closes (or holds), blinking lids."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)[None, :, None] / 25
    m = torch.zeros(B, T, 58)
    m[:, :, EXPR] = 0.5 * torch.sin(2 * np.pi * (0.5 + torch.rand(B, 1, 50, generator=g)) * t
                                    + 6 * torch.rand(B, 1, 50, generator=g))
    m[:, :, 50] = 0.15 + (0.1 * torch.sin(2 * np.pi * 3 * t[..., 0]) if jaw == "moving" else 0)
    m[:, :, 52] = 0.02
    m[:, :, 53:56] = 0.3 * torch.sin(2 * np.pi * t)            # global rotation: removed in canonical space
    m[:, :, 56:58] = 0.5 + 0.5 * torch.sin(2 * np.pi * 0.7 * t)
    return m


def brute_force(head: HeadModel, pred: torch.Tensor, target: torch.Tensor, mask=None) -> tuple[float, float]:
    """Velocity / acceleration MSE of every vertex by full skinning (float64)."""
    vp, vt = head(pred.double(), canonical=True), head(target.double(), canonical=True)   # [B, T, V, 3]
    out = []
    for n in (1, 2):
        err = (vp.diff(n=n, dim=1) - vt.diff(n=n, dim=1)).square().mean((-1, -2))       # [B, T - n]
        if mask is not None:
            m = mask.double()
            m = m[:, n:] * m[:, :-n] * (m[:, 1:-1] if n == 2 else 1)
            out.append(float((err * m).sum() / m.sum()))
        else:
            out.append(float(err.mean()))
    return out[0], out[1]


def test_weights_match_eq7(head):
    w = LossWeights()
    assert (w.param, w.vertex, w.dynamics) == (1.0, 1e5, 1e2)
    assert w.param_dynamics == 10.0                            # the measured extra (docs/TOKENIZER.md)
    pred, target = motion(2, 30, seed=1), motion(2, 30, seed=2)
    paper = MotionLoss(head, LossWeights(param_dynamics=0.0))(pred, target)
    eq7 = paper["param"] + 1e5 * (paper["lips"] + paper["face"]) + 1e2 * (paper["vel"] + paper["acc"])
    assert torch.isclose(paper["total"], eq7, rtol=1e-6)
    assert paper["param_vel"] > 0                              # computed (and logged) but not in Eq. 7's total
    default = MotionLoss(head)(pred, target)
    assert torch.isclose(default["total"], eq7 + 10.0 * (paper["param_vel"] + paper["param_acc"]), rtol=1e-6)


def test_mesh_coordinates_keep_every_distance(head):
    mc = MeshCoordinates(head)
    assert mc.num_vertices == V and mc.dim <= 619
    m = motion(1, 12, seed=3)[0].double()
    m[:, JAW] += torch.linspace(-0.3, 0.4, 12)[:, None]      # large jaw rotations about all three axes
    c = MeshCoordinates.features(m) @ mc.L.double().T
    verts = head(m, canonical=True)
    for a, b in [(0, 1), (2, 9), (5, 11)]:
        assert torch.isclose((c[a] - c[b]).square().sum(), (verts[a] - verts[b]).square().sum(), rtol=1e-5)
    acc_c = (c[2:] - 2 * c[1:-1] + c[:-2]).square().sum()
    acc_v = (verts[2:] - 2 * verts[1:-1] + verts[:-2]).square().sum()
    assert torch.isclose(acc_c, acc_v, rtol=1e-5)


def test_dynamics_are_the_full_vertex_sequence_terms(head, loss):
    target = motion(3, 25, seed=4)
    pred = target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 25)
    mask[1, 18:] = 0                                           # padding: its frames must not count
    vel, acc = loss.dynamics(pred, target, mask)
    bv, ba = brute_force(head, pred, target, mask)
    assert vel.item() == pytest.approx(bv, rel=1e-4) and acc.item() == pytest.approx(ba, rel=1e-4)
    garbage = pred.clone()
    garbage[1, 18:] += 5.0
    assert torch.allclose(torch.stack(loss.dynamics(garbage, target, mask)), torch.stack([vel, acc]), rtol=1e-6)


def test_open_head_full_mesh_matches_skinning():
    head = load_head("open")
    loss = MotionLoss(head)
    target = torch.from_numpy(np.tile(np.linspace(0, 1, 8, dtype=np.float32)[:, None], (1, 58)))[None] * 0.2
    pred = target + 0.02 * torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
    vel, acc = loss.dynamics(pred, target)
    bv, ba = brute_force(head, pred, target)
    assert vel.item() == pytest.approx(bv, rel=1e-3) and acc.item() == pytest.approx(ba, rel=1e-3)


def test_constant_offset_has_zero_velocity_and_added_jitter_does_not(loss):
    target = motion(2, 30, seed=5, jaw="held")                # jaw held: the mesh is linear in the expression
    offset = torch.zeros(58)
    offset[EXPR] = 0.3 * torch.randn(50, generator=torch.Generator().manual_seed(2))
    offset[56] = 0.2
    same_motion = loss(target + offset, target)
    assert same_motion["lips"] > 0 and same_motion["face"] > 0 and same_motion["param"] > 0
    assert same_motion["vel"] < 1e-6 * same_motion["face"] and same_motion["acc"] < 1e-6 * same_motion["face"]
    jitter = torch.zeros_like(target)
    jitter[:, 7, EXPR] = 0.05                                 # one frame out of line
    jittered = loss(target + jitter, target)
    assert jittered["vel"] > 1e-4 * jittered["face"] and jittered["acc"] > jittered["vel"]


def test_linear_in_time_difference_has_zero_acceleration(loss):
    target = motion(2, 30, seed=6, jaw="held")
    drift = torch.zeros(58)
    drift[EXPR] = 0.01 * torch.randn(50, generator=torch.Generator().manual_seed(3))
    pred = target + torch.arange(30, dtype=torch.float32)[None, :, None] * drift
    terms = loss(pred, target)
    assert terms["vel"] > 1e-9 and terms["acc"] < 1e-5 * terms["vel"]


def test_vertex_space_smoothness_jittery_reconstruction_scores_higher(loss):
    """Same per-frame parameter error, smooth vs. frame-to-frame sign flips: only Eq. 10 tells them apart."""
    target = motion(2, 40, seed=7)                            # a moving jaw: the mesh is not linear in time
    error = torch.zeros(58)
    error[EXPR] = 0.1 * torch.randn(50, generator=torch.Generator().manual_seed(4))
    sign = torch.tensor([1.0, -1.0]).repeat(20)[None, :, None]
    smooth, jittery = loss(target + error, target), loss(target + sign * error, target)
    for key in ("param", "lips", "face"):                     # the same per-frame errors, parameters and vertices
        assert torch.isclose(smooth[key], jittery[key], rtol=1e-4), key
    assert jittery["vel"] > 100 * smooth["vel"] and jittery["acc"] > 100 * smooth["acc"]
    assert jittery["total"] > smooth["total"]


def test_upper_face_dynamics_see_only_the_upper_face(head):
    """upper_dynamics: velocity / acceleration MSE of the upper-face vertices — zero for the truth itself, positive
    for a twitching brow, and part of the total only when weighted."""
    from a2llm.motion.losses import LossWeights

    x = motion(2, 30, seed=3)
    off = MotionLoss(head)
    on = MotionLoss(head, LossWeights(upper_dynamics=1e6))
    assert "upper_acc" not in off(x, x)
    same = on(x, x)
    assert same["upper_vel"] == 0 and same["upper_acc"] == 0
    y = x.clone()
    y[:, ::2, EXPR] += 0.05                                    # every other frame: a twitch of the expression
    terms, base = on(y, x), off(y, x)
    assert terms["upper_acc"] > terms["upper_vel"] > 0
    assert torch.isclose(terms["total"], base["total"] + 1e6 * (terms["upper_vel"] + terms["upper_acc"]))
