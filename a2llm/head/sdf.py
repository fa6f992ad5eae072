"""Signed-distance primitives used to sculpt the open default head (metres; negative inside).

All functions take points ``[N, 3]`` and return distances ``[N]``; they are vectorised numpy so the
head generator can ray-cast thousands of directions at once.
"""
from __future__ import annotations

import numpy as np


def ellipsoid(p: np.ndarray, center, radii) -> np.ndarray:
    """Approximate SDF of an axis-aligned ellipsoid (exact on the surface, a bound elsewhere)."""
    q = (p - np.asarray(center)) / np.asarray(radii)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(radii), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def sphere(p: np.ndarray, center, radius: float) -> np.ndarray:
    return np.linalg.norm(p - np.asarray(center), axis=-1) - radius


def capsule(p: np.ndarray, a, b, radius: float) -> np.ndarray:
    """Segment a-b swept by a sphere."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    pa, ba = p - a, b - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(pa - h[:, None] * ba, axis=-1) - radius


def vertical_cylinder(p: np.ndarray, center_xz, radii_xz, y_min: float, y_max: float) -> np.ndarray:
    """Elliptic cylinder along y, capped at y_min and y_max."""
    q = (p[:, [0, 2]] - np.asarray(center_xz)) / np.asarray(radii_xz)
    d_side = (np.linalg.norm(q, axis=-1) - 1.0) * min(radii_xz)
    d_cap = np.maximum(y_min - p[:, 1], p[:, 1] - y_max)
    return np.maximum(d_side, d_cap)


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: blends two shapes over a band of width ~k."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def smooth_subtract(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Carve shape b out of shape a, with a rounded edge of width ~k."""
    return -smooth_union(-a, b, k)


def smoothstep(edge0, edge1, x):
    """Hermite step from 0 (x <= edge0) to 1 (x >= edge1); edges may be given in either order."""
    t = np.clip((np.asarray(x, float) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
