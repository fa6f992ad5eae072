"""One tokenizer interface for audio and motion codecs (audiocraft-style)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Tokenizer(ABC):
    """A codec between a signal and discrete codes ``[N, num_codebooks]`` at ``frame_rate`` Hz."""

    frame_rate: float          # codes per second
    num_codebooks: int         # codes per step
    cardinality: int           # values per code

    @abstractmethod
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Signal -> int64 codes [N, num_codebooks]."""

    @abstractmethod
    def decode(self, codes: np.ndarray) -> np.ndarray:
        """int64 codes [N, num_codebooks] -> signal."""
