"""Desktop mode's turn taking: speech / silence per 32 ms frame (silero-vad or an energy threshold) and the
end-of-turn rule over them."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from ui.conversation import MAX_SECONDS, SAMPLE_RATE
from ui.desktop_audio import FRAME_S, DesktopError


# ------------------------------------------------------------------------------------------ turn taking
class EnergyVAD:
    """Speech = frame level more than ``margin_db`` over the room's noise floor (and over ``min_db`` dBFS).

    The floor follows quiet frames down at once and creeps up 1.5 dB/s, so it adapts to a noisier room
    without ever counting the speech itself as noise."""

    name = "energy threshold"

    def __init__(self, margin_db: float = 15.0, min_db: float = -50.0):
        self.margin_db, self.min_db = margin_db, min_db
        self.reset()

    def reset(self) -> None:
        self.floor = -60.0

    def __call__(self, frame: np.ndarray) -> bool:
        db = max(20 * math.log10(float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) + 1e-10), -90.0)
        voiced = db > max(self.floor + self.margin_db, self.min_db)
        self.floor = db if db < self.floor else self.floor + min(db - self.floor, 0.05)
        return voiced


class SileroVAD:
    """Speech = silero-vad probability over ``threshold`` (frames resampled to its 512-sample 16 kHz window)."""

    name = "silero-vad"

    def __init__(self, threshold: float = 0.5):
        # The hands-free mode's loader: it keeps torch's thread count (importing silero_vad sets 1 thread for the
        # whole process, which slowed the engine) and warms the TorchScript model up.
        from ui.handsfree import load_vad_model

        self.model, self.threshold = load_vad_model(), threshold
        self.window = round(SAMPLE_RATE * FRAME_S)

    def reset(self) -> None:
        self.model.reset_states()

    def __call__(self, frame: np.ndarray) -> bool:
        import torch
        from scipy.signal import resample

        x = frame if len(frame) == self.window else resample(frame, self.window)
        with torch.no_grad():
            return float(self.model(torch.from_numpy(np.asarray(x, np.float32)), SAMPLE_RATE)) > self.threshold


def make_vad(kind: str = "auto"):
    """(speech/silence classifier, a line saying which one runs). ``kind``: auto (silero-vad when importable),
    silero, energy."""
    if kind not in ("auto", "silero", "energy"):
        raise DesktopError(f"--vad must be auto, silero or energy, not {kind!r}")
    if kind == "energy":
        return EnergyVAD(), "energy threshold (--vad energy)"
    try:
        vad = SileroVAD()
    except Exception as e:                           # noqa: BLE001 (not installed, or its model failed to load)
        if kind == "silero":
            raise DesktopError(f"silero-vad is unavailable ({e}): pip install silero-vad, or --vad energy") from e
        return EnergyVAD(), f"energy threshold (silero-vad unavailable: {e})"
    return vad, "silero-vad"


class TurnDetector:
    """Cuts the microphone stream into user turns.

    :meth:`feed` takes blocks of any length and returns, in order, ``"start"`` when speech begins (after
    ``start_s`` of speech frames; a barge-in cue) and the turn's samples (with ``preroll_s`` before the start)
    once ``end_s`` of silence follows it, or when it reaches ``max_s``."""

    def __init__(self, sample_rate: int, is_speech: Callable[[np.ndarray], bool], start_s: float = 0.096,
                 end_s: float = 0.8, preroll_s: float = 0.3, max_s: float = MAX_SECONDS - 1):
        self.frame = round(sample_rate * FRAME_S)
        self.is_speech = is_speech
        self.start_n, self.end_n = max(1, round(start_s / FRAME_S)), max(1, round(end_s / FRAME_S))
        self.max_n = round(max_s / FRAME_S)
        self.pre: deque[np.ndarray] = deque(maxlen=round(preroll_s / FRAME_S) + self.start_n)
        self.reset()

    def reset(self) -> None:
        """Forget any partial turn (and the classifier's state)."""
        self.buf = np.zeros(0, np.float32)
        self.pre.clear()
        self.turn: list[np.ndarray] | None = None
        self.run = self.silent = 0
        if hasattr(self.is_speech, "reset"):
            self.is_speech.reset()

    def feed(self, block: np.ndarray) -> list:
        self.buf = np.concatenate([self.buf, np.asarray(block, np.float32).reshape(-1)])
        events = []
        while len(self.buf) >= self.frame:
            frame, self.buf = self.buf[:self.frame], self.buf[self.frame:]
            events += self._step(frame)
        return events

    def _step(self, frame: np.ndarray) -> list:
        voiced = self.is_speech(frame)
        if self.turn is None:
            self.pre.append(frame)
            self.run = self.run + 1 if voiced else 0
            if self.run < self.start_n:
                return []
            self.turn, self.silent = list(self.pre), 0
            self.pre.clear()
            return ["start"]
        self.turn.append(frame)
        self.silent = 0 if voiced else self.silent + 1
        if self.silent < self.end_n and len(self.turn) < self.max_n:
            return []
        audio, self.turn, self.run = np.concatenate(self.turn), None, 0
        return [audio]
