"""Step-Audio-2's CosyVoice2-style token2wav (flow matching + HiFT, 24 kHz) behind the Detokenizer interface.

    from a2llm.lalm.cosyvoice import CosyVoiceToken2Wav
    detok = CosyVoiceToken2Wav("checkpoints/Step-Audio-2-mini")        # or its token2wav/ folder
    pcm = detok.decode(codes)           # codes k in [0, 6561) (token id 151696 + k; <audio_6561> dropped first)

It drives the ``Token2wav`` class of the PyPI package ``step-audio2`` (top-level module ``token2wav``), whose
documented use is: ``Token2wav(model_path, float16=False)``; ``__call__(tokens, prompt_wav)`` -> WAV bytes of the
whole utterance; ``set_stream_cache(prompt_wav)`` once per stream; ``stream(tokens, prompt_wav,
last_chunk=False)`` -> 16-bit little-endian PCM bytes, fed 25 tokens + 3 lookahead tokens per call (the last 3
are decoded by the next call) and the remaining tokens with ``last_chunk=True`` at the end. That class runs on
CUDA only. ``prompt_wav`` is the reference voice (speaker embedding and prompt mel), e.g. ``assets/
default_female.wav`` of the Step-Audio2 GitHub repository. The adapter's voices are the reference recordings
it finds (:func:`prompt_voices`): ``detok.voices()`` lists them by file stem (``["prompt", "default_male"]``, the
default first) and ``detok.with_voice("default_male")`` is the same loaded models with that ``prompt_wav``.

The released folder (Hugging Face ``stepfun-ai/Step-Audio-2-mini``, ``token2wav/``) holds ``flow.yaml``,
``flow.pt``, ``hift.pt``, ``campplus.onnx`` and ``speech_tokenizer_v2_25hz.onnx``; the ``.pt`` files are plain
state dicts that the package loads with ``torch.load(..., weights_only=True)``. Nothing here unpickles.

Streaming vs whole: the package's streaming vocoder holds back its last 160 ms (3840 samples) until the next
call, so chunks are not exactly 25 tokens long (the first is 3840 samples short, ``flush()`` returns the tail)
and the streamed audio is not sample-equal to ``decode()`` (flow matching samples its own noise per call); the
total length is exactly ``960 * len(tokens)`` samples either way (24 kHz / 25 Hz).
"""
from __future__ import annotations

import copy
import importlib
import io
from pathlib import Path

import numpy as np

from a2llm.lalm.detokenizer import Detokenizer, DetokenizerStream

#: Files of the released token2wav folder.
REQUIRED_FILES = ("flow.yaml", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v2_25hz.onnx")
#: Where the project expects the Step-Audio-2-mini download (DESIGN.md, "Two scales").
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "checkpoints" / "Step-Audio-2-mini"
#: Reference voices looked for when no prompt_wav is given (in the token2wav folder or the model folder).
PROMPT_NAMES = ("prompt.wav", "default_female.wav", "default_male.wav", "assets/default_female.wav",
                "assets/default_male.wav")
PACKAGE, MODULE = "step-audio2", "token2wav"
NUM_CODES = 6561          # audio codes 0..6560; <audio_6561> is the pad/eos, dropped before detokenizing


def looks_like_token2wav_folder(path: str | Path) -> bool:
    """A Step-Audio-2 token2wav folder, or a model folder with a ``token2wav/`` subfolder."""
    path = Path(path)
    return (path / "flow.pt").exists() or (path / "hift.pt").exists() or (path / "token2wav" / "flow.pt").exists()


def _token2wav_folder(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: download stepfun-ai/Step-Audio-2-mini from Hugging Face "
                                f"into {DEFAULT_FOLDER} (its token2wav/ folder is what the detokenizer needs)")
    folder = path / "token2wav" if (path / "token2wav").is_dir() else path
    missing = [f for f in REQUIRED_FILES if not (folder / f).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {missing}: copy the token2wav/ folder of the Hugging Face model "
                                f"stepfun-ai/Step-Audio-2-mini ({', '.join(REQUIRED_FILES)}) to "
                                f"{DEFAULT_FOLDER / 'token2wav'} (or pass its path)")
    return folder


def prompt_voices(folder: str | Path, prompt_wav: str | Path | None = None) -> dict[str, Path]:
    """The reference voices of a token2wav folder: voice name (the file's stem) -> wav, the default first.

    ``prompt_wav`` (when given, it must exist) comes first, then :data:`PROMPT_NAMES` found in ``folder`` and
    its parent, in that order; of two files with one stem the first wins. Empty when none is found."""
    folder = Path(folder)
    found: list[Path] = []
    if prompt_wav is not None:
        p = Path(prompt_wav)
        if not p.is_file():
            raise FileNotFoundError(f"prompt_wav {p} does not exist (a reference voice recording, e.g. "
                                    "assets/default_female.wav of the Step-Audio2 GitHub repository)")
        found.append(p)
    found += [base / name for base in (folder, folder.parent) for name in PROMPT_NAMES if (base / name).is_file()]
    voices: dict[str, Path] = {}
    for p in found:
        voices.setdefault(p.stem, p)
    return voices


def _default_prompt(voices: dict[str, Path], folder: Path) -> Path:
    """The first of ``voices`` (:func:`prompt_voices` of ``folder``), or a clear error when there is none."""
    if voices:
        return next(iter(voices.values()))
    raise FileNotFoundError(f"no reference voice found (looked for {list(PROMPT_NAMES)} in {folder} and "
                            f"{folder.parent}): copy assets/default_female.wav of the Step-Audio2 GitHub repository "
                            f"to {folder / 'prompt.wav'} or pass prompt_wav=")


def _import_token2wav():
    try:
        module = importlib.import_module(MODULE)
    except ImportError as e:
        raise ImportError(f"the Step-Audio-2 token2wav needs the PyPI package {PACKAGE!r} (module {MODULE!r}) and "
                          "its dependencies: `pip install step-audio2` (pulls torchaudio, onnxruntime, s3tokenizer, "
                          f"hyperpyyaml, librosa; needs a CUDA GPU). Import failed: {e}") from e
    cls = getattr(module, "Token2wav", None)
    if cls is None or not all(hasattr(cls, a) for a in ("set_stream_cache", "stream", "__call__")):
        raise ImportError(f"module {MODULE!r} ({getattr(module, '__file__', '?')}) is not step-audio2's: it has no "
                          "Token2wav class with set_stream_cache/stream/__call__")
    return cls


def _pcm16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class CosyVoiceToken2Wav(Detokenizer):
    """Adapter over step-audio2's ``Token2wav`` (see the module docstring for files, package and behaviour).

    Args:
        path: the Step-Audio-2-mini folder or its ``token2wav/`` folder.
        prompt_wav: reference voice; default: the first of :data:`PROMPT_NAMES` found beside the weights (the
            others found are the adapter's other :meth:`voices`).
        float16: run the flow-matching model in half precision.
    """

    sample_rate = 24000
    num_tokens = NUM_CODES

    def __init__(self, path: str | Path = DEFAULT_FOLDER, prompt_wav: str | Path | None = None,
                 float16: bool = False):
        self.folder = _token2wav_folder(Path(path))
        self._voices = prompt_voices(self.folder, prompt_wav)
        self.prompt_wav = _default_prompt(self._voices, self.folder)
        self.voice = self.prompt_wav.stem
        cls = _import_token2wav()
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("step-audio2's Token2wav runs on CUDA only (it moves its models with .cuda()); "
                               "no CUDA device is available here — use the nano token2wav ('nano') on CPU")
        self.impl = cls(str(self.folder), float16=float16)
        # the package keeps one stream cache per Token2wav: which stream holds it, shared by every voice's copy
        self._cache_owner: dict[str, "CosyVoiceStream | None"] = {"stream": None}

    @property
    def _active(self) -> "CosyVoiceStream | None":
        return self._cache_owner["stream"]

    @_active.setter
    def _active(self, stream: "CosyVoiceStream | None") -> None:
        self._cache_owner["stream"] = stream

    def voices(self) -> list[str]:
        return list(self._voices)

    def _with_voice(self, name: str) -> "CosyVoiceToken2Wav":
        other = copy.copy(self)             # shares the loaded models (impl) and their stream cache's owner
        other.voice, other.prompt_wav = name, self._voices[name]
        return other

    def decode(self, tokens) -> np.ndarray:
        """Whole utterance through the package's offline path (flow over all tokens at once), float32 24 kHz."""
        import soundfile as sf

        tokens = self.check_tokens(tokens)
        if len(tokens) == 0:
            return np.zeros(0, np.float32)
        wav, sr = sf.read(io.BytesIO(self.impl([int(t) for t in tokens], str(self.prompt_wav))), dtype="float32")
        if sr != self.sample_rate:
            raise RuntimeError(f"Token2wav returned {sr} Hz audio, expected {self.sample_rate}")
        wav = wav.mean(1) if wav.ndim == 2 else wav
        want = self.num_samples(len(tokens))
        return wav[:want] if len(wav) >= want else np.pad(wav, (0, want - len(wav)))

    def stream(self) -> "CosyVoiceStream":
        return CosyVoiceStream(self)


class CosyVoiceStream(DetokenizerStream):
    """One utterance through ``Token2wav.stream``; of an adapter's streams, only the last one to start decoding
    may go on (the package holds a single stream cache)."""

    exact_chunks = False

    def _reset_state(self) -> None:
        # the package's cache is set up when the utterance's first chunk is decoded, not on every reset
        self._armed = False

    def _decode(self, start: int, end: int, final: bool) -> np.ndarray:
        d: CosyVoiceToken2Wav = self.detokenizer
        if not self._armed:
            d.impl.set_stream_cache(str(d.prompt_wav))
            d._active, self._armed = self, True
        elif d._active is not self:
            raise RuntimeError("another stream of this CosyVoiceToken2Wav started decoding since; step-audio2 keeps "
                               "one stream cache per Token2wav: finish one utterance before starting the next")
        if final and start == end:
            # nothing left to decode: return the 160 ms the vocoder held back after the last chunk
            tail = getattr(d.impl, "hift_cache_dict", {}).get("speech")
            return np.zeros(0, np.float32) if tail is None else tail.reshape(-1).float().cpu().numpy()
        window = self.tokens[start:end if final else end + d.lookahead_tokens]
        return _pcm16(d.impl.stream([int(t) for t in window], str(d.prompt_wav), last_chunk=final))


def load_cosyvoice(argument: str | None) -> CosyVoiceToken2Wav:
    """Registry factory: ``"cosyvoice"`` / ``"step-audio2"`` (checkpoints/Step-Audio-2-mini) or ``"cosyvoice:PATH"``."""
    return CosyVoiceToken2Wav(argument or DEFAULT_FOLDER)
