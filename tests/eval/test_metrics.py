"""Known-answer tests of the seed's seven motion metrics on a tiny synthetic head.

The head is built so that each expression coefficient drives one measured quantity linearly:
coefficient 0 moves the lower lip down (opening = 10 mm + 10 mm * c0), coefficient 1 moves the mouth
corners apart (width = 50 mm + 10 mm * c1), coefficient 2 lifts the upper-face vertices (10 mm * c2).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from a2llm.eval import metrics as M
from a2llm.head.base import HeadData, HeadModel
from a2llm.motion.layout import GLOBAL, MOTION_DIM

UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT = 0, 1, 2, 3
UPPER_FACE = [4, 5, 6, 7]
NEUTRAL_OPENING = 0.010  # metres
NEUTRAL_WIDTH = 0.050


def make_head_data() -> HeadData:
    """A 12-vertex head whose first three expression bases open the mouth, widen it, lift the brows."""
    template = np.array([
        [0.0, -0.030, 0.100], [0.0, -0.040, 0.100],            # upper lip, lower lip
        [0.025, -0.035, 0.090], [-0.025, -0.035, 0.090],       # mouth corners (left = +x)
        [0.030, 0.030, 0.090], [-0.030, 0.030, 0.090],         # upper face: eye region ...
        [0.030, 0.050, 0.080], [-0.030, 0.050, 0.080],         # ... and forehead
        [0.040, -0.010, 0.080], [-0.040, -0.010, 0.080],       # cheeks
        [0.0, -0.060, 0.090], [0.0, 0.000, 0.110],             # chin, nose
    ], dtype=np.float32)
    V = len(template)
    expr = np.zeros((V, 3, 50), np.float32)
    expr[LOWER_LIP, 1, 0] = -0.010
    expr[MOUTH_LEFT, 0, 1], expr[MOUTH_RIGHT, 0, 1] = 0.005, -0.005
    expr[UPPER_FACE, 1, 2] = 0.010
    joints = [10, 11, 10, 4, 5]                                 # root, neck, jaw, eyes on chosen vertices
    J_regressor = np.zeros((5, V), np.float32)
    J_regressor[np.arange(5), joints] = 1.0
    lbs_weights = np.zeros((V, 5), np.float32)
    lbs_weights[:, 0] = 1.0                                     # everything follows the root
    faces = np.array([[0, 2, 1], [0, 1, 3], [4, 5, 6], [5, 7, 6], [8, 2, 10], [9, 3, 10], [11, 4, 5]])
    return HeadData(name="tiny-test-head", template=template, faces=faces, expr_dirs=expr,
                    J_regressor=J_regressor, lbs_weights=lbs_weights,
                    regions={"lips": np.array([0, 1, 2, 3]), "face": np.arange(V), "upper_face": np.array(UPPER_FACE)},
                    landmarks={"upper_lip": UPPER_LIP, "lower_lip": LOWER_LIP,
                               "mouth_left": MOUTH_LEFT, "mouth_right": MOUTH_RIGHT})


def make_motion(opening: np.ndarray, width: np.ndarray | None = None, brows: np.ndarray | None = None) -> np.ndarray:
    """[T, 58] motion with the three driving coefficients set (others zero)."""
    T = len(opening)
    m = np.zeros((T, MOTION_DIM), np.float32)
    m[:, 0] = opening
    m[:, 1] = 0.0 if width is None else width
    m[:, 2] = 0.0 if brows is None else brows
    return m


def smooth_signal(T: int, seed: int) -> np.ndarray:
    """A broadband, non-periodic signal in about [-0.5, 0.5]: smoothed seeded noise."""
    x = np.convolve(np.random.default_rng(seed).standard_normal(T + 8), np.ones(5) / 5, mode="valid")[:T]
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def head() -> HeadModel:
    return HeadModel(make_head_data())


def test_metric_keys_are_the_design_contract():
    assert M.METRIC_KEYS == ("mod_mm", "ufd", "temporal_corr", "velocity_corr", "lip_width_corr",
                             "liveliness", "peak_align_ms")
    assert set(M.METRIC_INFO) == set(M.METRIC_KEYS)


def test_opening_and_width_are_landmark_distances_in_metres(head):
    verts = M.to_vertices(make_motion(np.array([0.0, 0.3, -0.2]), width=np.array([0.0, 0.5, 1.0])), head)
    np.testing.assert_allclose(M.mouth_opening(verts, head), [0.010, 0.013, 0.008], atol=1e-7)
    np.testing.assert_allclose(M.lip_width(verts, head), [0.050, 0.055, 0.060], atol=1e-7)


def test_identical_inputs(head):
    T = 100
    brows = 0.4 * np.sin(2 * np.pi * 4 * np.arange(T) / T)      # four whole periods
    m = make_motion(smooth_signal(T, 0), width=smooth_signal(T, 1), brows=brows)
    r = M.compute_metrics(m, m, head)
    assert list(r) == list(M.METRIC_KEYS)
    assert r["mod_mm"] == 0.0
    for key in ("temporal_corr", "velocity_corr", "lip_width_corr", "liveliness"):
        assert r[key] == pytest.approx(1.0, abs=1e-9), key
    assert r["peak_align_ms"] == 0.0
    # each upper-face vertex moves 10 mm * 0.4 * sin: 3-D temporal std = 4 mm / sqrt(2)
    assert r["ufd"] == pytest.approx(4.0 / math.sqrt(2.0), rel=1e-4)


def test_shift_by_three_frames_is_120_ms_positive_when_pred_lags(head):
    x = smooth_signal(203, 2)
    delayed, on_time = make_motion(x[0:200]), make_motion(x[3:203])   # delayed[t] == on_time[t - 3]
    assert M.compute_metrics(delayed, on_time, head)["peak_align_ms"] == pytest.approx(120.0)
    assert M.compute_metrics(on_time, delayed, head)["peak_align_ms"] == pytest.approx(-120.0)
    # the lag is in frames divided by fps
    o_del = M.mouth_opening(M.to_vertices(delayed, head), head)
    o_on = M.mouth_opening(M.to_vertices(on_time, head), head)
    assert M.peak_align_ms(o_del, o_on, fps=50) == pytest.approx(60.0)
    # a shift hurts the frame-wise correlation
    assert M.compute_metrics(delayed, on_time, head)["temporal_corr"] < 0.9


def test_doubled_opening_amplitude(head):
    a = smooth_signal(120, 3)
    r = M.compute_metrics(make_motion(2 * a), make_motion(a), head)
    assert r["liveliness"] == pytest.approx(2.0, rel=1e-4)     # std ratio of the openings
    assert r["temporal_corr"] == pytest.approx(1.0, abs=1e-6)
    assert r["velocity_corr"] == pytest.approx(1.0, abs=1e-6)
    assert r["peak_align_ms"] == 0.0
    # |o_pred - o_ref| = 10 mm * |a|
    assert r["mod_mm"] == pytest.approx(10.0 * np.abs(a).mean(), rel=1e-4)


def test_reversed_ramp(head):
    ramp = np.linspace(0.0, 0.5, 50)
    r = M.compute_metrics(make_motion(ramp[::-1].copy()), make_motion(ramp), head)
    assert r["temporal_corr"] == pytest.approx(-1.0, abs=1e-6)
    # a ramp's velocity is constant, so its correlation is undefined
    assert math.isnan(r["velocity_corr"])
    assert r["mod_mm"] == pytest.approx(10.0 * np.abs(ramp[::-1] - ramp).mean(), rel=1e-4)


def test_upper_face_still_gives_zero_ufd(head):
    m = make_motion(smooth_signal(60, 4), width=smooth_signal(60, 5))   # mouth moves, brows do not
    assert M.compute_metrics(m, m, head)["ufd"] == pytest.approx(0.0, abs=1e-6)


def test_ufd_is_reference_free_and_linear(head):
    T = 50
    brows = np.sin(2 * np.pi * 2 * np.arange(T) / T)
    ref = make_motion(smooth_signal(T, 6))
    small = M.compute_metrics(make_motion(smooth_signal(T, 6), brows=0.1 * brows), ref, head)["ufd"]
    large = M.compute_metrics(make_motion(smooth_signal(T, 6), brows=0.3 * brows), make_motion(np.zeros(T)), head)["ufd"]
    assert small == pytest.approx(1.0 / math.sqrt(2.0), rel=1e-4)
    assert large == pytest.approx(3.0 * small, rel=1e-4)


def test_lip_width_correlation_follows_the_corners(head):
    T = 80
    a, b = smooth_signal(T, 7), smooth_signal(T, 8)
    r = M.compute_metrics(make_motion(a, width=-b), make_motion(a, width=b), head)
    assert r["lip_width_corr"] == pytest.approx(-1.0, abs=1e-6)
    assert r["temporal_corr"] == pytest.approx(1.0, abs=1e-6)


def test_global_rotation_is_removed(head):
    T = 40
    base = make_motion(smooth_signal(T, 9), width=smooth_signal(T, 10), brows=smooth_signal(T, 11))
    turned = base.copy()
    turned[:, GLOBAL] = np.stack([0.3 * np.sin(np.arange(T) / 5), 0.2 * np.cos(np.arange(T) / 7),
                                  np.zeros(T)], axis=1)
    # the rotation does move the skinned (non-canonical) mesh ...
    assert not np.allclose(head.vertices(turned), head.vertices(base), atol=1e-4)
    # ... but none of the metrics, which are computed in canonical space
    r_turned, r_base = M.compute_metrics(turned, base, head), M.compute_metrics(base, base, head)
    for key in M.METRIC_KEYS:
        assert r_turned[key] == pytest.approx(r_base[key], abs=1e-5), key


def test_vertex_input_equals_motion_input(head):
    T = 30
    pred = make_motion(smooth_signal(T, 12), width=smooth_signal(T, 15), brows=smooth_signal(T, 13))
    ref = make_motion(smooth_signal(T, 14), width=smooth_signal(T, 16))
    from_motion = M.compute_metrics(pred, ref, head)
    from_verts = M.compute_metrics(head.vertices(pred, canonical=True), head.vertices(ref, canonical=True), head)
    mixed = M.compute_metrics(pred, head.vertices(ref, canonical=True), head)
    assert np.isfinite(list(from_motion.values())).all()
    for key in M.METRIC_KEYS:
        assert from_verts[key] == pytest.approx(from_motion[key], abs=1e-9), key
        assert mixed[key] == pytest.approx(from_motion[key], abs=1e-9), key


def test_different_lengths_are_truncated_with_a_warning(head):
    a = smooth_signal(60, 15)
    with pytest.warns(UserWarning, match="truncated to 45"):
        r = M.compute_metrics(make_motion(a), make_motion(a[:45]), head)
    assert r == M.compute_metrics(make_motion(a[:45]), make_motion(a[:45]), head)


def test_constant_signals_give_nan_not_errors(head):
    still = make_motion(np.zeros(20))
    r = M.compute_metrics(still, still, head)
    assert r["mod_mm"] == 0.0 and r["ufd"] == 0.0
    for key in ("temporal_corr", "velocity_corr", "lip_width_corr", "liveliness", "peak_align_ms"):
        assert math.isnan(r[key]), key
    assert math.isnan(M.pearson(np.ones(5), np.arange(5.0)))


def test_three_frames_is_enough(head):
    r = M.compute_metrics(make_motion(np.array([0.0, 0.2, 0.1])), make_motion(np.array([0.0, 0.4, 0.2])), head)
    assert r["velocity_corr"] == pytest.approx(1.0, abs=1e-6) and r["liveliness"] == pytest.approx(0.5, rel=1e-4)


def test_bad_inputs_raise_clear_errors(head):
    with pytest.raises(ValueError, match="at least 3 frames"):
        M.compute_metrics(make_motion(np.zeros(2)), make_motion(np.zeros(2)), head)
    with pytest.raises(ValueError, match=r"expected motion \[T, 58\]"):
        M.compute_metrics(np.zeros((10, 57)), make_motion(np.zeros(10)), head)
    with pytest.raises(ValueError, match="has 5 vertices but head"):
        M.compute_metrics(np.zeros((10, 5, 3)), make_motion(np.zeros(10)), head)
    with pytest.raises(ValueError, match="fps must be positive"):
        M.peak_align_ms(np.arange(5.0), np.arange(5.0), fps=0)


def test_aggregate_mean_std_and_nan_handling():
    def result(value: float) -> dict[str, float]:
        return {k: value for k in M.METRIC_KEYS}

    rows = [result(1.0), result(3.0), {**result(math.nan), "mod_mm": 5.0}]
    stats = M.aggregate(rows)
    assert stats["mod_mm"] == pytest.approx((3.0, math.sqrt(8.0 / 3.0)))
    assert stats["temporal_corr"] == pytest.approx((2.0, 1.0))           # the nan pair is left out
    assert all(math.isnan(v) for v in M.aggregate([result(math.nan)])["liveliness"])
    with pytest.raises(ValueError, match="at least one"):
        M.aggregate([])
    with pytest.raises(ValueError, match="lack metric 'ufd'"):
        M.aggregate([{"mod_mm": 1.0}])
