"""MotionTokenizer: FLAME motion [T, 58] at 25 fps <-> RVQ codes [T/5, 6] at 5 Hz.

    from a2llm.motion import MotionTokenizer
    tok = MotionTokenizer.from_pretrained("checkpoints/a2llm-nano")   # or its rvq/ folder
    codes = tok.encode(motion)          # [ceil(T/5), 6] int64 in [0, 256)
    motion = tok.decode(codes)          # [5 N, 58] float32
    stream = tok.streaming()            # segment-by-segment decoding for the engine
    frames = stream.step(codes[:2])     # [10, 58]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from a2llm.checkpoint import load_component, save_component
from a2llm.motion.io import validate_motion
from a2llm.motion.rvq import MotionRVQVAE, RVQConfig, StreamingDecoder
from a2llm.tokenizer import Tokenizer

PART = "rvq"


class MotionTokenizer(Tokenizer):
    """The residual motion tokenizer behind the shared :class:`Tokenizer` interface."""

    def __init__(self, model: MotionRVQVAE):
        self.model = model.eval()
        cfg = model.cfg
        self.frame_rate = 25 / cfg.group
        self.num_codebooks = cfg.num_quantizers
        self.cardinality = cfg.codebook_size
        self.group = cfg.group

    @property
    def config(self) -> RVQConfig:
        return self.model.cfg

    def encode(self, motion: np.ndarray) -> np.ndarray:
        """[T, 58] motion (25 fps) -> [ceil(T/5), 6] int64 codes."""
        m = torch.from_numpy(validate_motion(motion))
        with torch.no_grad():
            return self.model.encode(m[None])[0].numpy().astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """[N, 6] codes -> [5 N, 58] float32 motion."""
        codes = self._check_codes(codes)
        with torch.no_grad():
            return self.model.decode(torch.from_numpy(codes)[None])[0].numpy().astype(np.float32)

    def decode_expected(self, logits) -> np.ndarray:
        """[N, 6, 256] code logits (a predictor's, e.g. the connector's) -> [5 N, 58] float32 motion, decoded from
        the expected latent (:meth:`MotionRVQVAE.expected_latent`) rather than from the most likely codes."""
        logits = torch.as_tensor(logits)
        if logits.ndim != 3 or tuple(logits.shape[1:]) != (self.num_codebooks, self.cardinality):
            raise ValueError(f"logits must be [N, {self.num_codebooks}, {self.cardinality}], got {tuple(logits.shape)}")
        with torch.no_grad():
            z = self.model.expected_latent(logits)
            return self.model.decode_latent(z[None])[0].numpy().astype(np.float32)

    def _check_codes(self, codes) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.num_codebooks:
            raise ValueError(f"codes must be [N, {self.num_codebooks}], got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer) or codes.min(initial=0) < 0 or codes.max(initial=0) >= self.cardinality:
            raise ValueError(f"codes must be integers in [0, {self.cardinality})")
        return codes.astype(np.int64)

    def streaming(self) -> StreamingDecoder:
        """A fresh streaming decoder (its own state; ``reset()`` to reuse it for a new turn)."""
        return StreamingDecoder(self.model)

    # --- checkpoints --------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        return save_component(folder, PART, self.model.cfg, self.model.state_dict())

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "MotionTokenizer":
        """Load from a tokenizer folder, or an A²-LLM checkpoint folder (follows a2llm.json's "rvq" part)."""
        cfg, state = load_component(path, PART, RVQConfig)
        model = MotionRVQVAE(cfg)
        model.load_state_dict(state)
        return cls(model)
