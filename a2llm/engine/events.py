"""The typed events one engine turn yields (DESIGN.md "Engine"), in the order they become available.

Audio and motion share one timeline: audio sample s is at s / sample_rate seconds of the reply, motion frame f
at f / 25 s. ``t_ms`` on every event is the wall time since the user's input ended (the turn's clock).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TextDelta:
    """New text of the reply (``text``: the characters added since the last delta)."""

    text: str
    t_ms: float


@dataclass
class AudioChunk:
    """Speech samples [n] float32 starting at ``start_s`` of the reply."""

    pcm: np.ndarray
    start_s: float
    sample_rate: int
    t_ms: float


@dataclass
class MotionChunk:
    """FLAME motion frames [n, 58] (25 fps) starting at frame ``start_frame`` of the reply."""

    frames: np.ndarray
    start_frame: int
    t_ms: float


@dataclass
class TurnMetrics:
    """The turn's figures, yielded last.

    Attributes:
        ttft_ms: input end -> first audio token decoded.
        ttfa_ms: input end -> first motion frame out of the motion tokenizer's decoder.
        rtf: generation wall time / seconds of speech produced.
        wall_ms: input end -> last event.
        speech_s: seconds of speech (audio tokens / 25).
        stages: milliseconds spent per stage (encoder, prefill, decode, connector, tokenizer_decode,
            detokenizer; render when the engine renders).
        decode_tokens: tokens decoded (text + audio).
        overhead_ratio: wall_ms / sum(stages): the engine's own cost on top of the stages' compute.
        cancelled: the turn was stopped (barge-in) before the model ended it.
        text: the reply's text.
        heard: a spoken turn's transcript (what the model heard; its ASR subtask), None for typed turns or with
            ``EngineConfig.transcribe`` off.
    """

    ttft_ms: float
    ttfa_ms: float
    rtf: float
    wall_ms: float
    speech_s: float
    stages: dict[str, float] = field(default_factory=dict)
    decode_tokens: int = 0
    overhead_ratio: float = float("nan")
    cancelled: bool = False
    text: str = ""
    heard: str | None = None

    def as_dict(self) -> dict:
        return {"ttft_ms": self.ttft_ms, "ttfa_ms": self.ttfa_ms, "rtf": self.rtf, "wall_ms": self.wall_ms,
                "speech_s": self.speech_s, "stages": dict(self.stages), "decode_tokens": self.decode_tokens,
                "overhead_ratio": self.overhead_ratio, "cancelled": self.cancelled, "text": self.text,
                "heard": self.heard}


Event = TextDelta | AudioChunk | MotionChunk | TurnMetrics
