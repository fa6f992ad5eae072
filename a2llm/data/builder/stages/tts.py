"""Stage ``tts``: speak each generated question, so that every FLAME-QA sample has question audio.

Engines are pluggable (:class:`TTSEngine`); the built-in one is espeak-ng, which works offline. It uses
``a2llm.data.espeak.synthesize`` (libespeak-ng through ctypes) when that module is installed, else the
``espeak-ng`` command line. Voice, rate and pitch vary per item, drawn from the config's ranges by a
generator seeded with the item id, so a rerun speaks every question exactly as before.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from a2llm.data.builder.files import atomic_write_wav
from a2llm.data.builder.manifest import Record
from a2llm.data.builder.media import read_wav
from a2llm.data.builder.runner import ItemError, Stage

DEFAULT_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+f2", "en-us+m3", "en-gb-x-rp", "en-029", "en-gb-scotland")


class TTSEngine(Protocol):
    """What the ``tts`` stage needs of a speech synthesiser."""

    name: str

    def synthesize(self, text: str, *, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
        """Speak ``text``: ([N] float32 mono audio, sample rate)."""
        ...


class EspeakTTS:
    """espeak-ng, through ``a2llm.data.espeak`` (library) or the ``espeak-ng`` executable (CLI).

    Args:
        backend: ``"library"``, ``"cli"`` or ``"auto"`` (the library when its module imports, else the CLI).
    """

    def __init__(self, backend: str = "auto"):
        if backend not in ("auto", "library", "cli"):
            raise ValueError(f"tts backend must be 'auto', 'library' or 'cli', got {backend!r}")
        self._synth = None
        if backend in ("auto", "library"):
            try:
                from a2llm.data.espeak import synthesize  # another part of the project; may not exist
            except (ImportError, OSError) as exc:
                if backend == "library":
                    raise ImportError(f"tts backend 'library' needs a2llm.data.espeak, which failed to import: "
                                      f"{exc}") from exc
            else:
                self._synth = synthesize
        if self._synth is None:
            self.exe = shutil.which("espeak-ng")
            if self.exe is None:
                raise FileNotFoundError("espeak-ng is not installed: `apt-get install espeak-ng` "
                                        "(or give the tts stage another engine)")
        self.name = "espeak-ng (a2llm.data.espeak)" if self._synth is not None else "espeak-ng (cli)"

    def synthesize(self, text: str, *, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
        if self._synth is not None:
            utt = self._synth(text, voice=voice, rate=rate, pitch=pitch)
            return np.asarray(utt.audio, dtype=np.float32), int(utt.sample_rate)
        with tempfile.TemporaryDirectory(prefix="a2llm-tts-") as tmp:
            out = Path(tmp) / "speech.wav"
            # Text goes through stdin so that a question starting with "-" is never read as an option.
            cmd = [self.exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(out), "--stdin"]
            proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
            if proc.returncode != 0 or not out.exists():
                err = proc.stderr.decode("utf-8", "replace").strip()
                raise RuntimeError(f"espeak-ng failed (voice {voice!r}, exit {proc.returncode}): {err}")
            return read_wav(out)


@dataclass(frozen=True)
class TtsConfig:
    """Options of the ``tts`` stage.

    Attributes:
        engine: ``"espeak"`` (the only built-in engine; pass another :class:`TTSEngine` in code).
        backend: espeak backend: ``"auto"``, ``"library"`` or ``"cli"``.
        voices: espeak-ng voice names (with ``+variant``) to draw from.
        rate: (min, max) speaking rate in words per minute, drawn uniformly (integers, inclusive).
        pitch: (min, max) espeak pitch 0-99.
        seed: mixed into each item's generator; change it to re-draw every voice.
    """

    engine: str = "espeak"
    backend: str = "auto"
    voices: tuple[str, ...] = DEFAULT_VOICES
    rate: tuple[int, int] = (150, 190)
    pitch: tuple[int, int] = (35, 65)
    seed: int = 0


def voice_for(item: str, config: TtsConfig) -> tuple[str, int, int]:
    """The (voice, rate, pitch) of an item: deterministic in (item id, seed)."""
    digest = hashlib.sha256(f"{config.seed}:{item}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    voice = config.voices[int(rng.integers(len(config.voices)))]
    rate = int(rng.integers(config.rate[0], config.rate[1] + 1))
    pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
    return voice, rate, pitch


class TtsStage(Stage):
    """Write ``items/<id>/tts/question.wav`` from the LLM's question.

    Output: ``audio`` (relative path), ``sample_rate``, ``duration_s``, ``voice``, ``rate``, ``pitch``,
    ``engine``.

    Args:
        config: options.
        engine: an already-constructed :class:`TTSEngine`, used as is.
    """

    name = "tts"
    requires = ("llm",)

    def __init__(self, config: TtsConfig | None = None, *, engine: TTSEngine | None = None):
        self.config = config or TtsConfig()
        c = self.config
        if not c.voices:
            raise ValueError("tts.voices is empty; give at least one espeak-ng voice (e.g. \"en-us\")")
        for key, (lo, hi) in (("rate", c.rate), ("pitch", c.pitch)):
            if lo > hi:
                raise ValueError(f"tts.{key} must be [min, max] with min <= max, got {[lo, hi]}")
        if engine is None and c.engine != "espeak":
            raise ValueError(f"tts.engine {c.engine!r} is unknown; the built-in engine is 'espeak'")
        self.engine = engine

    def load(self) -> None:
        if self.engine is None:
            self.engine = EspeakTTS(self.config.backend)

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        assert self.engine is not None, "load() was not called"
        question = record.output("llm")["question"]
        voice, rate, pitch = voice_for(record.id, self.config)
        audio, sr = self.engine.synthesize(question, voice=voice, rate=rate, pitch=pitch)
        if audio.ndim != 1 or audio.size == 0 or not np.any(audio):
            raise ItemError(f"the TTS engine returned no speech for {question!r} (shape {audio.shape})")
        path = atomic_write_wav(workdir / "question.wav", audio, sr)
        return {"audio": record.relpath(path), "sample_rate": sr, "duration_s": audio.size / sr,
                "voice": voice, "rate": rate, "pitch": pitch, "engine": self.engine.name}
