"""The facial-motion metrics of the seed paper (A²-LLM, appendix C, eqs. 11-17; tables 3, 4 and 6), exactly as
the paper defines them, plus two of our own that the paper's UFD needs beside it.

Every metric reads vertices in canonical zero-pose space (global rotation removed:
``head.vertices(motion, canonical=True)``), so head turns are not counted as face motion (appendix C).
Three per-frame signals are read off the mesh ``V[t] ∈ R^{N×3}`` (metres):

* mouth opening ``O[t] = h(V[t]) = ‖V[t, upper_lip] − V[t, lower_lip]‖₂`` — the paper's h(V), "the vertical
  mouth opening (distance between upper and lower lips)". **Reading taken: Euclidean** distance of the head's two
  mid-lip landmarks. At rest the two landmarks sit one above the other, so the distance is the vertical opening; we
  take the norm rather than the y component because a jaw rotation also moves the lower lip backwards, lip
  protrusion (pucker) moves both lips forward, and the norm does not depend on which axis a head calls "up";
* mouth width ``W[t] = ‖V[t, mouth_left] − V[t, mouth_right]‖₂`` — "horizontal distance between lip corners";
  Euclidean for the same reasons;
* upper-face displacement ``d[t, i] = ‖V[t, i] − V_neu[i]‖₂`` for i in ``S_up = head.regions["upper_face"]``
  (eye region + forehead), with ``V_neu = head.neutral()`` the head's neutral template (all parameters zero).

The metrics (JSON keys from DESIGN.md, in :data:`METRIC_KEYS` order; the paper's seven first):

``mod_mm`` — Mouth Opening Distance (eq. 11; lower is better), millimetres:
    ``MOD = (1/T) Σ_t |h(V̂_t) − h(V_t)| × 1000``.

``ufd`` — Upper Face Dynamics (eq. 12; reference-free, higher = livelier upper face), on the prediction alone:
    ``UFD = (1/(T−1)) Σ_{t=1}^{T−1} (1/|S_up|) Σ_{i∈S_up} |d[t,i] − d[t−1,i]| × 10⁵``.
    A still upper face gives 0. It is a mean frame-to-frame speed of the displacement norms, so frame-to-frame
    jitter raises it as much as expression does: read it beside ``upper_face_jitter``.

``temporal_corr`` — Temporal Correlation (eq. 13): ``PCC(O_pred, O_gt)``.

``velocity_corr`` — Velocity Correlation (eq. 14): ``PCC(v_pred, v_gt)`` with ``v[t] = O[t] − O[t−1]``.

``lip_width_corr`` — Lip Width Correlation (eq. 15): ``PCC(W_pred, W_gt)``.

``liveliness`` — Liveliness Ratio (eq. 16; best near 1): ``σ(v_pred) / (σ(v_gt) + ε)``, the standard deviation of
    the opening's *velocity* (motion energy), ε = :data:`EPS`. Over-smoothed motion gives < 1, jitter > 1.

``peak_align_ms`` — Peak Alignment latency (eq. 17; ≥ 0, lower is better), milliseconds: the local maxima of both
    opening curves (:func:`scipy.signal.find_peaks`, a peak must stand :data:`PEAK_PROMINENCE` above its
    surroundings so that float round-off is not a peak); for each ground-truth peak the nearest predicted peak;
    ``Lag = median_i min_j |t(p_gt⁽ⁱ⁾) − t(p_pred⁽ʲ⁾)|`` converted to ms with ``fps``. Never negative.

Beyond the paper (the paper's UFD cannot tell expression from twitching):

``upper_face_jitter`` — the prediction's mean upper-face acceleration over the reference's:
    ``mean_{t,i} |Δ²d_pred[t,i]| / mean_{t,i} |Δ²d_gt[t,i]|`` with ``Δ²d[t] = d[t+1] − 2 d[t] + d[t−1]``.
    1 = as smooth as the reference; 2 = twice its frame-to-frame acceleration.

``upper_face_err_mm`` — mean distance of the prediction's upper-face vertices to the reference's, millimetres:
    ``1000 · mean_{t,i∈S_up} ‖V̂[t,i] − V[t,i]‖₂``. Says whether the upper face does the *right* thing, where
    UFD only says it moves.

Degenerate cases: sequences shorter than :data:`MIN_FRAMES` frames raise ``ValueError``; sequences of different
length are truncated to the shorter (with a warning); a correlation or a ratio whose reference is constant (std
below :data:`CONSTANT_TOL` metres, the float32 round-off of metre-scale vertices) and a peak alignment where either
curve has no peak are undefined and returned as ``nan``.

Inputs are either motion ``[T, 58]`` (DESIGN.md layout; skinned in canonical space) or vertex sequences
``[T, N, 3]`` of the head's topology (e.g. FLAME, N = 5023), used as given: the caller must have removed global
rotation.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import find_peaks

from a2llm.motion.layout import FPS, MOTION_DIM

if TYPE_CHECKING:  # the metrics need only the head's landmarks, regions, neutral and skinning
    from a2llm.head.base import HeadModel

#: The paper's seven (tables 3, 4 and 6), in its order.
PAPER_KEYS = ("mod_mm", "ufd", "temporal_corr", "velocity_corr", "lip_width_corr", "liveliness", "peak_align_ms")
#: Ours, beside UFD.
EXTRA_KEYS = ("upper_face_jitter", "upper_face_err_mm")
#: Every JSON key, in table order.
METRIC_KEYS = PAPER_KEYS + EXTRA_KEYS
#: The paper's table 3 (spatial) and table 4 / 6 (temporal) columns.
SPATIAL_KEYS = ("mod_mm", "ufd")
TEMPORAL_KEYS = ("temporal_corr", "velocity_corr", "lip_width_corr", "liveliness", "peak_align_ms")


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown: ``short`` is a table column, ``better`` says which way is better."""

    name: str
    short: str
    unit: str
    better: str


#: key -> display information; used by the CLI tables.
METRIC_INFO: dict[str, MetricInfo] = {
    "mod_mm": MetricInfo("Mouth Opening Distance", "MOD (mm)", "mm", "lower"),
    "ufd": MetricInfo("Upper Face Dynamics", "UFD", "×1e5 m/frame", "higher"),
    "temporal_corr": MetricInfo("Temporal Correlation", "Temp. corr", "r", "higher"),
    "velocity_corr": MetricInfo("Velocity Correlation", "Vel. corr", "r", "higher"),
    "lip_width_corr": MetricInfo("Lip Width Correlation", "Lip-width corr", "r", "higher"),
    "liveliness": MetricInfo("Liveliness Ratio", "Liveliness", "ratio", "closer to 1"),
    "peak_align_ms": MetricInfo("Peak Align latency", "Peak align (ms)", "ms", "lower"),
    "upper_face_jitter": MetricInfo("Upper-face jitter (ours)", "UF jitter", "ratio", "closer to 1"),
    "upper_face_err_mm": MetricInfo("Upper-face error (ours)", "UF err (mm)", "mm", "lower"),
    # a split-level figure (a2llm/eval/tables.py), not a per-pair metric: not in METRIC_KEYS
    "upper_face_jitter_pooled": MetricInfo("Upper-face jitter, pooled over the split (ours)", "UF jitter pooled",
                                           "ratio", "closer to 1"),
}

#: Shortest sequence the metrics accept: the acceleration needs three frames.
MIN_FRAMES = 3
#: A signal whose standard deviation (metres) is below this is treated as constant.
CONSTANT_TOL = 1e-7
#: ε of eq. 16 (metres per frame): keeps the ratio finite; far below any real velocity spread.
EPS = 1e-12
#: A local maximum of the opening counts as a peak when it stands this far (metres) above its surroundings
#: (scipy's prominence): 0.1 mm, far above float32 round-off, far below a syllable's opening (several mm).
PEAK_PROMINENCE = 1e-4


# --- inputs ------------------------------------------------------------------------------------
def to_vertices(x: np.ndarray, head: "HeadModel") -> np.ndarray:
    """Canonical vertices from motion or vertices.

    Args:
        x: [T, 58] motion (skinned with the global rotation removed) or [T, N, 3] vertices
            (returned unchanged, as float64).
        head: the head whose topology the vertices have.

    Returns:
        [T, N, 3] float64 vertices in metres.
    """
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == MOTION_DIM:
        return head.vertices(x, canonical=True).astype(np.float64)
    if x.ndim == 3 and x.shape[2] == 3:
        if x.shape[1] != head.num_vertices:
            raise ValueError(f"vertex sequence has {x.shape[1]} vertices but head {head.name!r} has "
                             f"{head.num_vertices}; pass vertices of the head's topology or [T, 58] motion")
        return x.astype(np.float64)
    raise ValueError(f"expected motion [T, {MOTION_DIM}] or vertices [T, N, 3], got shape {x.shape}")


def _match_lengths(pred: np.ndarray, ref: np.ndarray, min_len: int = MIN_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Truncate both to the shorter length (warning when they differ); reject fewer than ``min_len``."""
    if len(pred) != len(ref):
        warnings.warn(f"pred has {len(pred)} frames and ref {len(ref)}; both truncated to "
                      f"{min(len(pred), len(ref))}", stacklevel=3)
        n = min(len(pred), len(ref))
        pred, ref = pred[:n], ref[:n]
    if len(pred) < min_len:
        raise ValueError(f"metrics need at least {min_len} frames, got {len(pred)}")
    return pred, ref


def _signal(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D per-frame signal [T], got shape {x.shape}")
    return x


def _verts(verts: np.ndarray, name: str = "verts") -> np.ndarray:
    verts = np.asarray(verts, dtype=np.float64)
    if verts.ndim != 3 or verts.shape[2] != 3 or len(verts) < MIN_FRAMES:
        raise ValueError(f"{name} must be [T >= {MIN_FRAMES}, N, 3], got shape {verts.shape}")
    return verts


# --- per-frame signals -------------------------------------------------------------------------
def _landmark_distance(verts: np.ndarray, head: "HeadModel", a: str, b: str) -> np.ndarray:
    verts = np.asarray(verts, dtype=np.float64)
    if verts.ndim != 3 or verts.shape[2] != 3:
        raise ValueError(f"verts must be [T, N, 3], got shape {verts.shape}")
    return np.linalg.norm(verts[:, head.landmarks[a]] - verts[:, head.landmarks[b]], axis=-1)


def mouth_opening(verts: np.ndarray, head: "HeadModel") -> np.ndarray:
    """h(V): [T, N, 3] vertices -> [T] distance between the upper- and lower-lip landmarks, in metres."""
    return _landmark_distance(verts, head, "upper_lip", "lower_lip")


def lip_width(verts: np.ndarray, head: "HeadModel") -> np.ndarray:
    """W: [T, N, 3] vertices -> [T] distance between the two mouth-corner landmarks, in metres."""
    return _landmark_distance(verts, head, "mouth_left", "mouth_right")


def upper_face_displacement(verts: np.ndarray, head: "HeadModel") -> np.ndarray:
    """d[t, i] = ‖V[t, i] − V_neu[i]‖ over the upper face: [T, N, 3] -> [T, |S_up|] metres."""
    idx = np.asarray(head.regions["upper_face"])
    neutral = np.asarray(head.neutral(), dtype=np.float64)[idx]
    return np.linalg.norm(np.asarray(verts, dtype=np.float64)[:, idx] - neutral, axis=-1)


# --- the paper's metrics -----------------------------------------------------------------------
def mouth_opening_distance_mm(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """MOD (eq. 11): mean absolute mouth-opening error, mm. Args are [T] openings in metres."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    return float(1000.0 * np.mean(np.abs(p - r)))


def ufd_from_displacement(d: np.ndarray) -> float:
    """UFD (eq. 12) from displacement norms ``d`` [T, U] (metres): mean |d[t] − d[t−1]| × 1e5."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or len(d) < 2:
        raise ValueError(f"d must be [T >= 2, U], got shape {d.shape}")
    return float(1e5 * np.mean(np.abs(np.diff(d, axis=0))))


def upper_face_dynamics(verts: np.ndarray, head: "HeadModel") -> float:
    """UFD (eq. 12) of one sequence, reference-free. ``verts``: [T, N, 3] canonical vertices in metres."""
    return ufd_from_displacement(upper_face_displacement(_verts(verts), head))


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.std(x) < CONSTANT_TOL)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two [T >= 2] signals; ``nan`` when either is constant (undefined)."""
    x, y = _match_lengths(_signal(x, "x"), _signal(y, "y"), min_len=2)  # velocities of 3 frames are 2 long
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def temporal_correlation(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """Eq. 13: Pearson r of the [T] mouth-opening curves."""
    return pearson(pred_open, ref_open)


def velocity_correlation(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """Eq. 14: Pearson r of the opening velocities v[t] = O[t] − O[t−1] ([T] -> [T−1])."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    return pearson(np.diff(p), np.diff(r))


def lip_width_correlation(pred_width: np.ndarray, ref_width: np.ndarray) -> float:
    """Eq. 15: Pearson r of the [T] lip-width curves."""
    return pearson(pred_width, ref_width)


def liveliness_ratio(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """Eq. 16: σ(v_pred) / (σ(v_gt) + ε), v the opening's velocity; ``nan`` when the reference never moves."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    vp, vr = np.diff(p), np.diff(r)
    if _is_constant(vr):
        return math.nan
    return float(np.std(vp) / (np.std(vr) + EPS))


def opening_peaks(opening: np.ndarray) -> np.ndarray:
    """Frame indices of the local maxima of a [T] opening curve (prominence >= :data:`PEAK_PROMINENCE`)."""
    peaks, _ = find_peaks(_signal(opening, "opening"), prominence=PEAK_PROMINENCE)
    return peaks


def peak_align_ms(pred_open: np.ndarray, ref_open: np.ndarray, fps: float = FPS) -> float:
    """Eq. 17: median over ground-truth peaks of the distance to the nearest predicted peak, ms (>= 0).

    ``nan`` when either curve has no peak (nothing to align).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    pp, pr = opening_peaks(p), opening_peaks(r)
    if len(pp) == 0 or len(pr) == 0:
        return math.nan
    nearest = np.abs(pr[:, None] - pp[None, :]).min(axis=1)              # [gt peaks] frames
    return float(1000.0 * np.median(nearest) / fps)


# --- ours ----------------------------------------------------------------------------------------
def upper_face_jitter(pred_d: np.ndarray, ref_d: np.ndarray) -> float:
    """mean |Δ²d_pred| / mean |Δ²d_gt| of [T, U] upper-face displacement norms; ``nan`` for a still reference."""
    p, r = _match_lengths(np.asarray(pred_d, np.float64), np.asarray(ref_d, np.float64))
    ap, ar = np.abs(np.diff(p, n=2, axis=0)).mean(), np.abs(np.diff(r, n=2, axis=0)).mean()
    if ar < CONSTANT_TOL:                          # a still reference: only round-off accelerates
        return math.nan
    return float(ap / ar)


def upper_face_error_mm(pred_verts: np.ndarray, ref_verts: np.ndarray, head: "HeadModel") -> float:
    """1000 · mean over frames and upper-face vertices of ‖V̂ − V‖ ([T, N, 3] each, metres) -> mm."""
    p, r = _match_lengths(_verts(pred_verts, "pred"), _verts(ref_verts, "ref"))
    idx = np.asarray(head.regions["upper_face"])
    return float(1000.0 * np.linalg.norm(p[:, idx] - r[:, idx], axis=-1).mean())


def compute_metrics(pred: np.ndarray, ref: np.ndarray, head: "HeadModel", fps: float = FPS) -> dict[str, float]:
    """Every metric for one predicted / reference pair.

    Args:
        pred: [T1, 58] motion or [T1, N, 3] canonical vertices of the prediction.
        ref: [T2, 58] motion or [T2, N, 3] canonical vertices of the reference.
        head: the head both are skinned with (landmarks, the upper-face region, the neutral template).
        fps: frame rate shared by both (only the peak-align latency depends on it).

    Returns:
        :data:`METRIC_KEYS` -> float (``nan`` where undefined, see the module docstring).
    """
    pv, rv = _match_lengths(to_vertices(pred, head), to_vertices(ref, head))
    po, ro = mouth_opening(pv, head), mouth_opening(rv, head)
    pd, rd = upper_face_displacement(pv, head), upper_face_displacement(rv, head)
    return {
        "mod_mm": mouth_opening_distance_mm(po, ro),
        "ufd": ufd_from_displacement(pd),
        "temporal_corr": temporal_correlation(po, ro),
        "velocity_corr": velocity_correlation(po, ro),
        "lip_width_corr": lip_width_correlation(lip_width(pv, head), lip_width(rv, head)),
        "liveliness": liveliness_ratio(po, ro),
        "peak_align_ms": peak_align_ms(po, ro, fps=fps),
        "upper_face_jitter": upper_face_jitter(pd, rd),
        "upper_face_err_mm": upper_face_error_mm(pv, rv, head),
    }


def aggregate(results: Sequence[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over pairs (the paper's "mean ± std").

    ``nan`` entries (undefined for that pair) are left out of that metric's statistics; a metric undefined for
    every pair gives ``(nan, nan)``. The std is the population std (ddof = 0), so one pair gives std 0.

    Args:
        results: per-pair dicts from :func:`compute_metrics`.

    Returns:
        :data:`METRIC_KEYS` -> (mean, std).
    """
    if len(results) == 0:
        raise ValueError("aggregate needs at least one result dict, got none")
    out: dict[str, tuple[float, float]] = {}
    for key in METRIC_KEYS:
        missing = [i for i, r in enumerate(results) if key not in r]
        if missing:
            raise ValueError(f"result dicts {missing} lack metric {key!r}; expected keys {METRIC_KEYS}")
        values = np.array([r[key] for r in results], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[key] = (float(values.mean()), float(values.std())) if len(values) else (math.nan, math.nan)
    return out


__all__ = ["METRIC_KEYS", "PAPER_KEYS", "EXTRA_KEYS", "SPATIAL_KEYS", "TEMPORAL_KEYS", "METRIC_INFO", "MetricInfo",
           "MIN_FRAMES", "CONSTANT_TOL", "EPS", "PEAK_PROMINENCE", "to_vertices", "mouth_opening", "lip_width",
           "upper_face_displacement", "mouth_opening_distance_mm", "ufd_from_displacement", "upper_face_dynamics",
           "pearson", "temporal_correlation", "velocity_correlation", "lip_width_correlation", "liveliness_ratio",
           "opening_peaks", "peak_align_ms", "upper_face_jitter", "upper_face_error_mm", "compute_metrics",
           "aggregate"]
