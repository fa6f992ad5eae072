"""The seven facial-motion metrics of the seed paper (A²-LLM, arXiv 2602.04913, appendix C; tables 3-4).

Every metric compares a predicted sequence with a reference sequence of the same utterance, both at
``fps`` frames per second, in canonical zero-pose space: the global head rotation is removed
(``head.vertices(motion, canonical=True)``) so that head turns are not counted as face motion.
Source: the names, what each metric measures, its unit and which way is better are the seed's
(tables 3-4 and appendix C). The copy of appendix C reachable from this project could not be read past
the paper's opening, so where a formula detail is not given by those descriptions the most natural
reading is used and marked *not stated* below.

Three per-frame signals are read off the mesh ``X[t] ∈ R^{V×3}`` (metres):

* mouth opening  ``o[t] = ‖X[t, upper_lip] − X[t, lower_lip]‖₂``  (the head's lip landmarks);
* lip width      ``w[t] = ‖X[t, mouth_left] − X[t, mouth_right]‖₂`` (the mouth-corner landmarks);
* upper-face vertices ``X[t, U]`` with ``U = head.regions["upper_face"]`` (eye region + forehead).

The metrics (JSON keys from DESIGN.md, in :data:`METRIC_KEYS` order):

``mod_mm`` — Mouth Opening Distance (spatial, lower is better). Mean absolute error of the mouth
    opening, in millimetres: ``MOD = 1000 · (1/T) Σ_t |o_pred[t] − o_ref[t]|``.

``ufd`` — Upper-Face Dynamics (spatial, higher is better). The seed uses it as a reference-free
    measure of how much the upper face moves (the Semantic-Emotion Gap shows up as a still upper
    face), so it is computed on the prediction alone. *Not stated in what we could read of the
    seed: the exact formula and scale.* Our reading, after the "dynamics = temporal standard
    deviation" convention of CodeTalker's FDD: the mean over upper-face vertices of each vertex's
    3-D temporal standard deviation, in millimetres:
    ``UFD = 1000 · (1/|U|) Σ_{v∈U} sqrt((1/T) Σ_t ‖X[t,v] − mean_t X[t,v]‖²)``.
    A still upper face gives 0; doubling the upper-face motion doubles it. The seed's absolute
    numbers (≈ 2-11 on its table 3) are on its own, unstated, scale and are not comparable.

``temporal_corr`` — Temporal Correlation (higher is better): Pearson correlation of the two mouth
    opening curves, ``r(o_pred, o_ref)``; it measures rhythm, independent of amplitude and offset.

``velocity_corr`` — Velocity Correlation (higher is better): Pearson correlation of the opening
    velocities, ``r(Δo_pred, Δo_ref)`` with ``Δo[t] = o[t+1] − o[t]`` (the factor ``fps`` that turns
    this into m/s cancels in a correlation). It asks whether the mouth opens and closes at the same
    moments, not only whether it is open at the same moments.

``lip_width_corr`` — Lip-Width Correlation (higher is better): ``r(w_pred, w_ref)``; horizontal
    stretching (smiles, spread vowels) in sync.

``liveliness`` — Liveliness Ratio (best near 1): the prediction's mouth motion energy relative to
    the reference's. *Not stated exactly in what we could read:* we take the energy as the
    temporal standard deviation of the opening, ``L = std(o_pred) / std(o_ref)``, so over-smoothed
    motion gives L < 1, exaggerated motion L > 1, and scaling the opening's excursions about the
    neutral by k gives exactly k.

``peak_align_ms`` — Peak-Align latency (best near 0): the lag of the peak of the cross-correlation
    of the mean-removed opening curves, in milliseconds:
    ``lag* = argmax_k Σ_t ô_pred[t+k] ô_ref[t]``, ``peak_align_ms = 1000 · lag* / fps``, with
    ``ô = o − mean(o)`` and k over every overlap (``scipy.signal.correlate``, ``mode="full"``).
    Positive when the prediction lags the reference (pred[t] = ref[t − 3] at 25 fps → +120 ms).
    The value is signed per pair; the seed's table reports it as lower-is-better, i.e. its
    magnitude. Ties between lags resolve to the most negative lag (numpy ``argmax``).

Degenerate cases: sequences shorter than :data:`MIN_FRAMES` frames raise ``ValueError``; sequences
of different length are truncated to the shorter (with a warning); a correlation, the liveliness
ratio or the peak lag involving a constant signal (std below :data:`CONSTANT_TOL` metres, the
float32 round-off of metre-scale vertices) is undefined and returned as ``nan``.

Inputs are either motion ``[T, 58]`` (DESIGN.md layout; skinned in canonical space) or vertex
sequences ``[T, V, 3]`` of the head's topology (e.g. FLAME, V = 5023), which are used as given: the
caller must have removed global rotation. Mouth opening and lip width are distances and so do not
depend on it; only UFD does.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import correlate, correlation_lags

from a2llm.motion.layout import FPS, MOTION_DIM

if TYPE_CHECKING:  # the metrics need only the head's landmarks, regions and skinning
    from a2llm.head.base import HeadModel

#: JSON keys, in the order of the seed's tables 3-4.
METRIC_KEYS = ("mod_mm", "ufd", "temporal_corr", "velocity_corr", "lip_width_corr", "liveliness",
               "peak_align_ms")

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
    "ufd": MetricInfo("Upper-Face Dynamics", "UFD (mm)", "mm", "higher"),
    "temporal_corr": MetricInfo("Temporal Correlation", "Temp. corr", "r", "higher"),
    "velocity_corr": MetricInfo("Velocity Correlation", "Vel. corr", "r", "higher"),
    "lip_width_corr": MetricInfo("Lip-Width Correlation", "Lip-width corr", "r", "higher"),
    "liveliness": MetricInfo("Liveliness Ratio", "Liveliness", "ratio", "closer to 1"),
    "peak_align_ms": MetricInfo("Peak-Align latency", "Peak align (ms)", "ms", "closer to 0"),
}

#: Shortest sequence the metrics accept: velocity correlation needs two differences.
MIN_FRAMES = 3
#: A signal whose standard deviation (metres) is below this is treated as constant.
CONSTANT_TOL = 1e-7


# --- inputs ------------------------------------------------------------------------------------
def to_vertices(x: np.ndarray, head: "HeadModel") -> np.ndarray:
    """Canonical vertices from motion or vertices.

    Args:
        x: [T, 58] motion (skinned with the global rotation removed) or [T, V, 3] vertices
            (returned unchanged, as float64).
        head: the head whose topology the vertices have.

    Returns:
        [T, V, 3] float64 vertices in metres.
    """
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == MOTION_DIM:
        return head.vertices(x, canonical=True).astype(np.float64)
    if x.ndim == 3 and x.shape[2] == 3:
        if x.shape[1] != head.num_vertices:
            raise ValueError(f"vertex sequence has {x.shape[1]} vertices but head {head.name!r} has "
                             f"{head.num_vertices}; pass vertices of the head's topology or [T, 58] motion")
        return x.astype(np.float64)
    raise ValueError(f"expected motion [T, {MOTION_DIM}] or vertices [T, V, 3], got shape {x.shape}")


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


# --- per-frame signals -------------------------------------------------------------------------
def _landmark_distance(verts: np.ndarray, head: "HeadModel", a: str, b: str) -> np.ndarray:
    verts = np.asarray(verts, dtype=np.float64)
    if verts.ndim != 3 or verts.shape[2] != 3:
        raise ValueError(f"verts must be [T, V, 3], got shape {verts.shape}")
    return np.linalg.norm(verts[:, head.landmarks[a]] - verts[:, head.landmarks[b]], axis=-1)


def mouth_opening(verts: np.ndarray, head: "HeadModel") -> np.ndarray:
    """[T, V, 3] vertices -> [T] distance between the upper- and lower-lip landmarks, in metres."""
    return _landmark_distance(verts, head, "upper_lip", "lower_lip")


def lip_width(verts: np.ndarray, head: "HeadModel") -> np.ndarray:
    """[T, V, 3] vertices -> [T] distance between the two mouth-corner landmarks, in metres."""
    return _landmark_distance(verts, head, "mouth_left", "mouth_right")


# --- the metrics -------------------------------------------------------------------------------
def mouth_opening_distance_mm(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """MOD: mean absolute mouth-opening error, mm. Args are [T] openings in metres."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    return float(1000.0 * np.mean(np.abs(p - r)))


def upper_face_dynamics(verts: np.ndarray, head: "HeadModel") -> float:
    """UFD: mean over upper-face vertices of their 3-D temporal std, mm. ``verts``: [T, V, 3] metres."""
    verts = np.asarray(verts, dtype=np.float64)
    if verts.ndim != 3 or len(verts) < MIN_FRAMES:
        raise ValueError(f"verts must be [T >= {MIN_FRAMES}, V, 3], got shape {verts.shape}")
    upper = verts[:, head.regions["upper_face"]]                        # [T, U, 3]
    per_vertex = np.sqrt(np.sum(np.var(upper, axis=0), axis=-1))        # [U]
    return float(1000.0 * per_vertex.mean())


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.std(x) < CONSTANT_TOL)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two [T >= 2] signals; ``nan`` when either is constant (undefined)."""
    x, y = _match_lengths(_signal(x, "x"), _signal(y, "y"), min_len=2)  # velocities of 3 frames are 2 long
    if _is_constant(x) or _is_constant(y):
        return math.nan
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def temporal_correlation(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """Pearson r of the [T] mouth-opening curves."""
    return pearson(pred_open, ref_open)


def velocity_correlation(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """Pearson r of the frame-to-frame opening velocities ([T] -> [T-1] differences)."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    return pearson(np.diff(p), np.diff(r))


def lip_width_correlation(pred_width: np.ndarray, ref_width: np.ndarray) -> float:
    """Pearson r of the [T] lip-width curves."""
    return pearson(pred_width, ref_width)


def liveliness_ratio(pred_open: np.ndarray, ref_open: np.ndarray) -> float:
    """std(pred opening) / std(ref opening); ``nan`` when the reference opening is constant."""
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    if _is_constant(r):
        return math.nan
    return float(np.std(p) / np.std(r))


def peak_align_ms(pred_open: np.ndarray, ref_open: np.ndarray, fps: float = FPS) -> float:
    """Lag (ms) of the cross-correlation peak of the openings; positive when pred lags ref.

    ``nan`` when either opening is constant (the cross-correlation is flat).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    p, r = _match_lengths(_signal(pred_open, "pred_open"), _signal(ref_open, "ref_open"))
    if _is_constant(p) or _is_constant(r):
        return math.nan
    xcorr = correlate(p - p.mean(), r - r.mean(), mode="full")
    lags = correlation_lags(len(p), len(r), mode="full")
    return float(1000.0 * lags[int(np.argmax(xcorr))] / fps)


def compute_metrics(pred: np.ndarray, ref: np.ndarray, head: "HeadModel", fps: float = FPS) -> dict[str, float]:
    """All seven metrics for one predicted / reference pair.

    Args:
        pred: [T1, 58] motion or [T1, V, 3] canonical vertices of the prediction.
        ref: [T2, 58] motion or [T2, V, 3] canonical vertices of the reference.
        head: the head both are skinned with (landmarks and the upper-face region).
        fps: frame rate shared by both (only the peak-align latency depends on it).

    Returns:
        :data:`METRIC_KEYS` -> float (``nan`` where undefined, see the module docstring).
    """
    pv, rv = _match_lengths(to_vertices(pred, head), to_vertices(ref, head))
    po, ro = mouth_opening(pv, head), mouth_opening(rv, head)
    return {
        "mod_mm": mouth_opening_distance_mm(po, ro),
        "ufd": upper_face_dynamics(pv, head),
        "temporal_corr": temporal_correlation(po, ro),
        "velocity_corr": velocity_correlation(po, ro),
        "lip_width_corr": lip_width_correlation(lip_width(pv, head), lip_width(rv, head)),
        "liveliness": liveliness_ratio(po, ro),
        "peak_align_ms": peak_align_ms(po, ro, fps=fps),
    }


def aggregate(results: Sequence[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over pairs.

    ``nan`` entries (undefined for that pair) are left out of that metric's statistics; a metric
    undefined for every pair gives ``(nan, nan)``. The std is the population std (ddof = 0), so one
    pair gives std 0. ``peak_align_ms`` is averaged with its sign: a systematic delay shows in the
    mean, jitter in the std (take ``abs`` per pair first for a magnitude).

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


__all__ = ["METRIC_KEYS", "METRIC_INFO", "MetricInfo", "MIN_FRAMES", "CONSTANT_TOL", "to_vertices", "mouth_opening",
           "lip_width", "mouth_opening_distance_mm", "upper_face_dynamics", "pearson", "temporal_correlation",
           "velocity_correlation", "lip_width_correlation", "liveliness_ratio", "peak_align_ms",
           "compute_metrics", "aggregate"]
