"""Diagnostic plots for the motion metrics (matplotlib, Agg canvas: no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from a2llm.motion.layout import FPS


def plot_mouth_opening(pred_open: np.ndarray, ref_open: np.ndarray, out_path: str | Path, fps: float = FPS,
                       title: str | None = None) -> Path:
    """Draw predicted and reference mouth opening over time and save it as an image.

    Args:
        pred_open: [T1] predicted mouth opening, metres.
        ref_open: [T2] reference mouth opening, metres (lengths may differ; each is drawn in full).
        out_path: image file to write (format from its suffix, e.g. ``.png``).
        fps: frame rate of both curves, for the time axis in seconds.
        title: optional figure title.

    Returns:
        The path written.
    """
    return plot_mouth_openings({"reference": ref_open, "prediction": pred_open}, out_path, fps=fps, title=title)


def plot_mouth_openings(curves: dict[str, np.ndarray], out_path: str | Path, fps: float = FPS,
                        title: str | None = None) -> Path:
    """Draw several mouth-opening curves (label -> [T] metres) on one time axis; the first is solid."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # A bare Figure on an Agg canvas: does not touch pyplot's global backend or figure registry.
    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for k, (label, curve) in enumerate(curves.items()):
        curve = np.asarray(curve, dtype=np.float64)
        ax.plot(np.arange(len(curve)) / fps, 1000.0 * curve, "-" if k == 0 else "--", label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening (mm)")
    ax.set_title(title or "Mouth opening")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_path)
    return out_path
