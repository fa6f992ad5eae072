"""Desktop mode's avatar window (matplotlib), shown in step with the speech when a display exists."""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import numpy as np

FPS = 25                 # motion / video frame rate


# ---------------------------------------------------------------------------------------------- display
class Window:
    """Shows the reply's frames in step with the speech (``show`` one RGB frame; called on the main thread)."""

    def __init__(self, show: Callable[[np.ndarray], None]):
        self.show = show
        self.frames: list[np.ndarray] = []
        self.shown = -1
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.frames, self.shown = [], -1

    def push(self, images: list[np.ndarray]) -> None:
        """New frames of the reply (from the worker thread)."""
        with self._lock:
            self.frames += images

    def pump(self, t_s: float) -> None:
        """Show the frame at ``t_s`` seconds of the reply (the last one made, if it is not made yet)."""
        with self._lock:
            i = min(int(t_s * FPS), len(self.frames) - 1)
            frame = self.frames[i] if i > self.shown else None
            if frame is not None:
                self.shown = i
        if frame is not None:
            self.show(frame)


def has_display() -> bool:
    """A desktop to open a window on: Windows / macOS, or X11 / Wayland with their variable set."""
    import os

    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_window(size: int) -> tuple[Window | None, str]:
    """(a matplotlib window for the avatar, or None, and a line saying why / where)."""
    if not has_display():
        return None, "no display: the avatar is written as mp4 files only"
    try:
        import matplotlib.pyplot as plt

        if plt.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
            return None, f"matplotlib has no window toolkit ({plt.get_backend()}): mp4 files only"
        fig, ax = plt.subplots(figsize=(4, 4), num="A²-LLM")
        ax.axis("off")
        image = ax.imshow(np.zeros((size, size, 3), np.uint8))
        plt.show(block=False)
    except Exception as e:                           # noqa: BLE001 (no toolkit, display refused)
        return None, f"could not open a window ({e}): mp4 files only"

    def show(frame: np.ndarray) -> None:
        image.set_data(frame)
        fig.canvas.draw_idle()
        plt.pause(0.001)

    return Window(show), "the avatar is shown in a window (and written as mp4 files)"
