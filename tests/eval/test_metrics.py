"""Known-answer tests of the paper's motion metrics (appendix C, eqs. 11-17) and our two on a tiny synthetic head.

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



def openings(head, m: np.ndarray) -> np.ndarray:
    return M.mouth_opening(M.to_vertices(m, head), head)


def bumps(T: int, peaks: list[int], width: int = 2) -> np.ndarray:
    """An opening coefficient with triangular bumps (height 0.5) centred on ``peaks``; zero elsewhere."""
    x = np.zeros(T)
    for p in peaks:
        for k in range(-width, width + 1):
            if 0 <= p + k < T:
                x[p + k] = max(x[p + k], 0.5 * (1 - abs(k) / (width + 1)))
    return x


def test_metric_keys_are_the_design_contract():
    assert M.METRIC_KEYS == ("mod_mm", "ufd", "temporal_corr", "velocity_corr", "lip_width_corr",
                             "liveliness", "peak_align_ms", "upper_face_jitter", "upper_face_err_mm")
    assert M.PAPER_KEYS == M.METRIC_KEYS[:7]
    assert set(M.METRIC_INFO) == set(M.METRIC_KEYS) | {"upper_face_jitter_pooled"}   # + a split-level figure
    assert M.SPATIAL_KEYS + M.TEMPORAL_KEYS == M.PAPER_KEYS


def test_opening_and_width_are_landmark_distances_in_metres(head):
    verts = M.to_vertices(make_motion(np.array([0.0, 0.3, -0.2]), width=np.array([0.0, 0.5, 1.0])), head)
    np.testing.assert_allclose(M.mouth_opening(verts, head), [0.010, 0.013, 0.008], atol=1e-7)
    np.testing.assert_allclose(M.lip_width(verts, head), [0.050, 0.055, 0.060], atol=1e-7)


# --- eq. 11 ------------------------------------------------------------------------------------
def test_mod_by_hand(head):
    # openings 10 + 10 c0 mm: pred [11, 13, 10, 12], ref [10, 10, 14, 12] -> |diff| = [1, 3, 4, 0] -> 2.0 mm
    r = M.compute_metrics(make_motion(np.array([0.1, 0.3, 0.0, 0.2])), make_motion(np.array([0.0, 0.0, 0.4, 0.2])),
                          head)
    assert r["mod_mm"] == pytest.approx(2.0, rel=1e-5)


# --- eq. 12 ------------------------------------------------------------------------------------
def test_ufd_by_hand_and_reference_free(head):
    # the upper face rises 10 mm * c2: d = [0, 1, 3, 2] mm, |Δd| = [1, 2, 1] mm, mean 4/3 mm = 1.333e-3 m x 1e5
    brows = np.array([0.0, 0.1, 0.3, 0.2])
    a = M.compute_metrics(make_motion(np.zeros(4), brows=brows), make_motion(np.zeros(4)), head)["ufd"]
    b = M.compute_metrics(make_motion(np.zeros(4), brows=brows), make_motion(np.full(4, 0.3), brows=-brows),
                          head)["ufd"]
    assert a == pytest.approx(1e5 * 4e-3 / 3, rel=1e-4) and b == pytest.approx(a, rel=1e-9)


def test_ufd_counts_the_change_of_the_distance_to_neutral(head):
    # brows at -0.2 and +0.2 are both 2 mm from neutral: d does not change, so eq. 12 gives 0
    brows = np.array([-0.2, 0.2, -0.2, 0.2])
    assert M.compute_metrics(make_motion(np.zeros(4), brows=brows), make_motion(np.zeros(4)), head)["ufd"] == \
        pytest.approx(0.0, abs=1e-3)


def test_upper_face_still_gives_zero_ufd(head):
    m = make_motion(smooth_signal(60, 4), width=smooth_signal(60, 5))   # mouth moves, brows do not
    assert M.compute_metrics(m, m, head)["ufd"] == pytest.approx(0.0, abs=1e-6)


# --- eqs. 13-15 --------------------------------------------------------------------------------
def test_correlations_by_hand(head):
    a = smooth_signal(120, 3)
    r = M.compute_metrics(make_motion(0.1 + 2 * a), make_motion(a), head)     # opening 11 mm + 20 mm a
    assert r["temporal_corr"] == pytest.approx(1.0, abs=1e-6)
    assert r["velocity_corr"] == pytest.approx(1.0, abs=1e-6)
    ramp = np.linspace(0.0, 0.5, 50)
    r = M.compute_metrics(make_motion(ramp[::-1].copy()), make_motion(ramp), head)
    assert r["temporal_corr"] == pytest.approx(-1.0, abs=1e-6)
    assert math.isnan(r["velocity_corr"])         # a ramp's velocity is constant: undefined
    # velocity: o = [0, 1, 3, 6] vs [0, 2, 1, 2] (x 0.1) -> v = [1, 2, 3] vs [2, -1, 1] -> r = -0.5 / (1 * sqrt(7/3))
    r = M.compute_metrics(make_motion(np.array([0, 1, 3, 6]) / 10), make_motion(np.array([0, 2, 1, 2]) / 10), head)
    vp, vr = np.array([1.0, 2, 3]), np.array([2.0, -1, 1])
    expected = np.mean((vp - vp.mean()) * (vr - vr.mean())) / (vp.std() * vr.std())
    assert r["velocity_corr"] == pytest.approx(expected, abs=1e-5)


def test_lip_width_correlation_follows_the_corners(head):
    T = 80
    a, b = smooth_signal(T, 7), smooth_signal(T, 8)
    r = M.compute_metrics(make_motion(a, width=-b), make_motion(a, width=b), head)
    assert r["lip_width_corr"] == pytest.approx(-1.0, abs=1e-6)
    assert r["temporal_corr"] == pytest.approx(1.0, abs=1e-6)


# --- eq. 16 ------------------------------------------------------------------------------------
def test_liveliness_is_the_ratio_of_velocity_spreads(head):
    a = smooth_signal(120, 3)
    assert M.compute_metrics(make_motion(2 * a), make_motion(a), head)["liveliness"] == pytest.approx(2.0, rel=1e-4)
    # o_pred = [0, 2, 0, 2] and o_ref = [0, 1, 2, 3] mm offsets: v_pred = [2, -2, 2] (σ = sqrt(32/9)),
    # v_ref = [1, 1, 1] (σ = 0): undefined. o_ref = [0, 1, 3, 6]: v_ref = [1, 2, 3], σ = sqrt(2/3)
    pred, ref = np.array([0, 2, 0, 2]) / 10, np.array([0, 1, 3, 6]) / 10
    r = M.compute_metrics(make_motion(pred), make_motion(ref), head)
    assert r["liveliness"] == pytest.approx(math.sqrt(32 / 9) / math.sqrt(2 / 3), rel=1e-4)
    # the opening's own spread does not enter: a large still offset changes nothing
    assert M.liveliness_ratio(openings(head, make_motion(pred + 0.4)), openings(head, make_motion(ref))) == \
        pytest.approx(r["liveliness"], rel=1e-4)


# --- eq. 17 ------------------------------------------------------------------------------------
def test_peak_align_by_hand(head):
    # ground-truth peaks at frames 5, 15, 25; predicted at 7, 14, 28, 40: nearest distances 2, 1, 3 -> median 2
    # frames = 80 ms at 25 fps; the extra predicted peak at 40 answers no ground-truth peak and does not count
    ref, pred = make_motion(bumps(50, [5, 15, 25])), make_motion(bumps(50, [7, 14, 28, 40]))
    assert list(M.opening_peaks(openings(head, ref))) == [5, 15, 25]
    assert M.compute_metrics(pred, ref, head)["peak_align_ms"] == pytest.approx(80.0)
    assert M.peak_align_ms(openings(head, pred), openings(head, ref), fps=50) == pytest.approx(40.0)


def test_peak_align_of_a_known_delay_is_positive_both_ways(head):
    x = bumps(63, [6, 20, 33, 47, 58])
    delayed, on_time = make_motion(x[0:60]), make_motion(x[3:63])      # delayed[t] == on_time[t - 3]
    assert M.compute_metrics(delayed, on_time, head)["peak_align_ms"] == pytest.approx(120.0)
    assert M.compute_metrics(on_time, delayed, head)["peak_align_ms"] == pytest.approx(120.0)
    assert M.compute_metrics(on_time, on_time, head)["peak_align_ms"] == 0.0


def test_peak_align_without_peaks_is_nan(head):
    assert math.isnan(M.compute_metrics(make_motion(np.linspace(0, 0.5, 30)), make_motion(bumps(30, [10])),
                                        head)["peak_align_ms"])


# --- ours ------------------------------------------------------------------------------------------
def test_upper_face_jitter_of_pure_jitter_by_hand(head):
    # ref brows 0.001 t^2: Δ²d = 0.002 x 10 mm everywhere; pred adds 0.01 on even frames: the alternating part has
    # |Δ²| = 4 x 0.005 = 0.02, so |Δ²d_pred| alternates 0.022 / 0.018 (x 10 mm): mean 0.02 -> ratio 10
    t = np.arange(12, dtype=np.float64)
    ref_b = 0.001 * t ** 2
    pred_b = ref_b + 0.005 * (1 + (-1.0) ** t)
    r = M.compute_metrics(make_motion(np.zeros(12), brows=pred_b), make_motion(np.zeros(12), brows=ref_b), head)
    assert r["upper_face_jitter"] == pytest.approx(10.0, rel=1e-3)
    same = M.compute_metrics(make_motion(np.zeros(12), brows=ref_b), make_motion(np.zeros(12), brows=ref_b), head)
    assert same["upper_face_jitter"] == pytest.approx(1.0, rel=1e-6)
    # eq. 12 grows with the jitter although the expression is the same: the reason for the extra column
    assert r["ufd"] > 1.1 * same["ufd"]


def test_upper_face_error_by_hand(head):
    # every upper-face vertex 10 mm x 0.1 = 1 mm above the reference's
    r = M.compute_metrics(make_motion(np.zeros(10), brows=np.full(10, 0.1)), make_motion(np.zeros(10)), head)
    assert r["upper_face_err_mm"] == pytest.approx(1.0, rel=1e-4)
    assert math.isnan(r["upper_face_jitter"])        # a still reference has no acceleration to compare with


# --- general ---------------------------------------------------------------------------------------
def test_identical_inputs(head):
    T = 100
    brows = 0.4 * np.sin(2 * np.pi * 4 * np.arange(T) / T)
    m = make_motion(smooth_signal(T, 0), width=smooth_signal(T, 1), brows=brows)
    r = M.compute_metrics(m, m, head)
    assert list(r) == list(M.METRIC_KEYS)
    assert r["mod_mm"] == 0.0 and r["peak_align_ms"] == 0.0 and r["upper_face_err_mm"] == 0.0
    for key in ("temporal_corr", "velocity_corr", "lip_width_corr", "liveliness", "upper_face_jitter"):
        assert r[key] == pytest.approx(1.0, abs=1e-6), key
    # d = 10 mm x |0.4 sin|: eq. 12 is the mean |Δd|, by hand from the same formula
    d = 1e-2 * np.abs(brows)
    assert r["ufd"] == pytest.approx(1e5 * np.abs(np.diff(d)).mean(), rel=1e-4)


def test_global_rotation_is_removed(head):
    T = 40
    base = make_motion(smooth_signal(T, 9), width=smooth_signal(T, 10), brows=smooth_signal(T, 11))
    turned = base.copy()
    turned[:, GLOBAL] = np.stack([0.3 * np.sin(np.arange(T) / 5), 0.2 * np.cos(np.arange(T) / 7),
                                  np.zeros(T)], axis=1)
    assert not np.allclose(head.vertices(turned), head.vertices(base), atol=1e-4)
    r_turned, r_base = M.compute_metrics(turned, base, head), M.compute_metrics(base, base, head)
    for key in M.METRIC_KEYS:
        assert r_turned[key] == pytest.approx(r_base[key], abs=1e-4), key


def test_vertex_input_equals_motion_input(head):
    T = 30
    pred = make_motion(smooth_signal(T, 12), width=smooth_signal(T, 15), brows=smooth_signal(T, 13))
    ref = make_motion(smooth_signal(T, 14), width=smooth_signal(T, 16), brows=0.5 * smooth_signal(T, 17))
    from_motion = M.compute_metrics(pred, ref, head)
    from_verts = M.compute_metrics(head.vertices(pred, canonical=True), head.vertices(ref, canonical=True), head)
    assert np.isfinite(list(from_motion.values())).all()
    for key in M.METRIC_KEYS:
        assert from_verts[key] == pytest.approx(from_motion[key], abs=1e-9), key


def test_different_lengths_are_truncated_with_a_warning(head):
    a = smooth_signal(60, 15)
    with pytest.warns(UserWarning, match="truncated to 45"):
        r = M.compute_metrics(make_motion(a), make_motion(a[:45]), head)
    assert r == M.compute_metrics(make_motion(a[:45]), make_motion(a[:45]), head)


def test_constant_signals_give_nan_not_errors(head):
    still = make_motion(np.zeros(20))
    r = M.compute_metrics(still, still, head)
    assert r["mod_mm"] == 0.0 and r["ufd"] == 0.0 and r["upper_face_err_mm"] == 0.0
    for key in ("temporal_corr", "velocity_corr", "lip_width_corr", "liveliness", "peak_align_ms",
                "upper_face_jitter"):
        assert math.isnan(r[key]), key
    assert math.isnan(M.pearson(np.ones(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="at least 3 frames"):
        M.compute_metrics(still[:2], still[:2], head)


def test_aggregate_is_mean_and_std_without_nan():
    rows = [dict.fromkeys(M.METRIC_KEYS, 1.0), dict.fromkeys(M.METRIC_KEYS, 3.0), {**dict.fromkeys(M.METRIC_KEYS, 5.0),
                                                                                   "peak_align_ms": math.nan}]
    agg = M.aggregate(rows)
    assert agg["mod_mm"] == pytest.approx((3.0, math.sqrt(8 / 3)))
    assert agg["peak_align_ms"] == pytest.approx((2.0, 1.0))
    with pytest.raises(ValueError, match="lack metric"):
        M.aggregate([{"mod_mm": 1.0}])
