"""Stage ``audio``: decode each source (audio or video) once into a 16 kHz mono wav for the model stages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2llm.data.builder.files import atomic_write_wav
from a2llm.data.builder.manifest import Record
from a2llm.data.builder.media import load_audio
from a2llm.data.builder.runner import ItemError, Stage


@dataclass(frozen=True)
class AudioConfig:
    """Options of the ``audio`` stage.

    Attributes:
        sample_rate: rate of the extracted wav; 16 kHz is what Whisper and wav2vec2 SER models take.
    """

    sample_rate: int = 16000


class AudioStage(Stage):
    """Extract ``items/<id>/audio/audio.wav`` and measure duration and level.

    Output: ``audio`` (relative path), ``sample_rate``, ``duration_s``, ``rms_dbfs`` (level, for the silence
    filter), ``peak`` (max |sample|).
    """

    name = "audio"
    requires = ()

    def __init__(self, config: AudioConfig | None = None):
        self.config = config or AudioConfig()

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        rate = self.config.sample_rate
        audio = load_audio(record.source, rate)
        if not np.all(np.isfinite(audio)):
            raise ItemError(f"{record.source}: decoded audio holds NaN or infinite samples")
        path = atomic_write_wav(workdir / "audio.wav", audio, rate)
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        return {
            "audio": record.relpath(path),
            "sample_rate": rate,
            "duration_s": audio.size / rate,
            "rms_dbfs": 20.0 * float(np.log10(max(rms, 1e-10))),
            "peak": float(np.max(np.abs(audio))),
        }
