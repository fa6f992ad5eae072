"""Step-Audio-2's CosyVoice2-style token2wav (flow matching + HiFT, 24 kHz) behind the Detokenizer interface.

    from a2llm.lalm.cosyvoice import CosyVoiceToken2Wav
    detok = CosyVoiceToken2Wav("checkpoints/Step-Audio-2-mini")        # or its token2wav/ folder
    pcm = detok.decode(codes)           # codes k in [0, 6561) (token id 151696 + k; <audio_6561> dropped first)

It drives ``Token2wav``, the public class of the top-level module ``token2wav``, which comes in two public
shapes (read in the PyPI wheel ``step-audio2`` 1.0.0 and in the stepfun-ai/Step-Audio2 GitHub repository):

* both: ``Token2wav(model_path, float16=False)``; ``__call__(generated_speech_tokens, prompt_wav)`` -> the bytes of
  a WAV file (``torchaudio.save(..., sample_rate=24000, format='wav')``) of the whole utterance;
* the wheel also streams: ``set_stream_cache(prompt_wav)`` (returns nothing; sets the flow and vocoder caches) once
  per utterance, then ``stream(generated_speech_tokens, prompt_wav, last_chunk=False)`` -> 16-bit little-endian
  PCM bytes (float clipped to [-1, 1] times 32767), fed 25 tokens + ``flow.pre_lookahead_len`` (3) lookahead
  tokens per call (the lookahead tokens start the next call) and the rest with ``last_chunk=True``. Its vocoder
  holds back its last 160 ms (3840 samples) until the next call, so the first chunk is 3840 samples short and the
  last one 3840 long; ``flush()`` keeps the utterance exactly ``960 * len(tokens)`` samples (24 kHz / 25 Hz);
* the GitHub file (commit 3556c4c) has ``__call__`` only.

``prompt_wav`` is the reference voice (speaker embedding and prompt mel), e.g. ``assets/default_female.wav`` of
the Step-Audio2 GitHub repository. The adapter's voices are the reference recordings it finds
(:func:`prompt_voices`): ``detok.voices()`` lists them by file stem (the default first) and
``detok.with_voice(name)`` is the same loaded models with that ``prompt_wav``.

Streaming. With ``stream``/``set_stream_cache`` the adapter streams through them. Without them it falls back to
``__call__`` (``fallback``): ``"prefix"`` (default) re-synthesises the whole prefix up to the chunk's end plus
its 3 lookahead tokens at every chunk and emits the new part (the work grows with the square of the
utterance's length: a 15 s reply synthesises 8x its tokens, and the public ``__call__`` of the GitHub file also
re-reads the prompt every time); because each synthesis draws its own vocoder source noise, the
last :data:`CROSSFADE` samples of every chunk are held back and cross-faded into the next one. ``"end"`` emits
nothing (empty chunks) until ``flush()``, which synthesises the whole utterance once. Streamed audio need not
be sample-equal to ``decode()``; its length is exact either way.

Devices. Both public files run the speaker model (``campplus.onnx``) with onnxruntime's CPUExecutionProvider
only (no CUDA provider to handle; the speech tokenizer ``.onnx`` is converted to torch by ``s3tokenizer``). The
wheel hard-codes CUDA (``.cuda()`` on its models and tensors, ``device='cuda'`` tensors, ``torch.amp.autocast(
"cuda")``); the GitHub file picks MPS > CUDA > CPU with ``device_utils.get_device()``. ``device`` (default: CUDA
when there is one, else CPU) is honoured for both: a class that takes a ``device`` argument gets it; a module
with ``get_device`` has it answer ``device`` during each call when ``device`` is given (left to the module's
own choice otherwise); a class whose source hard-codes CUDA runs, when
``device`` is not CUDA, inside :func:`cuda_redirect`, which sends ``.cuda()``, ``device="cuda"`` and CUDA autocast
to ``device`` for the duration of each call into it. ``float16`` needs CUDA.

The released folder (Hugging Face ``stepfun-ai/Step-Audio-2-mini``, ``token2wav/``) holds ``flow.yaml``,
``flow.pt``, ``hift.pt``, ``campplus.onnx`` and ``speech_tokenizer_v2_25hz.onnx``; the ``.pt`` files are plain
state dicts that the package loads with ``torch.load(..., weights_only=True)``. Nothing here unpickles.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import inspect
import io
import re
import sys
import threading
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
SAMPLE_RATE = 24000       # both public Token2wav shapes write 24 kHz
PCM_SCALE = 32767.0       # Token2wav.stream writes int16(clip(x, -1, 1) * 32767)
#: Samples (10 ms) each re-synthesised chunk holds back and cross-fades into the next ("prefix" fallback).
CROSSFADE = 240
FALLBACKS = ("prefix", "end")
# Token2wav code looks its files up as f"{model_path}/..." and keeps one stream cache per instance; the CUDA
# redirect patches torch globally, so calls into a redirected class are serialised.
_REDIRECT_LOCK = threading.RLock()
_MISSING = object()


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


def _defines(cls: type, name: str) -> bool:
    """Whether ``cls`` (not ``object``/``type``) defines ``name``: every class has a ``__call__`` of its own
    metaclass, which must not count as the instance's."""
    return any(name in vars(k) for k in cls.__mro__ if k is not object)


def _import_token2wav() -> tuple[type, object]:
    """(``Token2wav`` class, its module), or an ImportError naming the missing package or dependency."""
    try:
        module = importlib.import_module(MODULE)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if missing and missing != MODULE:
            raise ImportError(f"the Step-Audio-2 token2wav module {MODULE!r} needs {missing!r}, which is not "
                              f"installed: `pip install {PACKAGE}` installs it with its dependencies (torchaudio, "
                              f"onnxruntime, s3tokenizer, hyperpyyaml, librosa). Import failed: {e}") from e
        raise ImportError(f"the Step-Audio-2 token2wav needs the PyPI package {PACKAGE!r} (module {MODULE!r}): "
                          f"`pip install {PACKAGE}` (pulls torchaudio, onnxruntime, s3tokenizer, hyperpyyaml, "
                          "librosa), or put the stepfun-ai/Step-Audio2 GitHub repository (its token2wav.py) on "
                          f"PYTHONPATH. Import failed: {e}") from e
    cls = getattr(module, "Token2wav", None)
    if not isinstance(cls, type) or not _defines(cls, "__call__"):
        raise ImportError(f"module {MODULE!r} ({getattr(module, '__file__', '?')}) is not step-audio2's: it has no "
                          "Token2wav class with __call__(generated_speech_tokens, prompt_wav)")
    return cls, module


# --- devices ----------------------------------------------------------------------------------------------------
class _TorchOn:
    """``torch`` as seen by code that hard-codes CUDA: factory calls with ``device="cuda"`` (or a CUDA
    ``torch.device``) build on ``device`` instead, and CUDA autocast is a no-op off CUDA."""

    def __init__(self, torch, device):
        self._torch, self._device = torch, device

    def _move(self, value):
        if isinstance(value, (str, self._torch.device)) and self._torch.device(value).type == "cuda":
            return self._device
        return value

    def __getattr__(self, name):
        attr = getattr(self._torch, name)
        if name == "amp":
            return _AmpOn(attr, self._device)
        if callable(attr) and not isinstance(attr, type):
            @functools.wraps(attr)
            def call(*args, **kwargs):
                if "device" in kwargs:
                    kwargs["device"] = self._move(kwargs["device"])
                return attr(*args, **kwargs)
            return call
        return attr


class _AmpOn:
    def __init__(self, amp, device):
        self._amp, self._device = amp, device

    def autocast(self, device_type, *args, **kwargs):
        if device_type == "cuda" and self._device.type != "cuda":
            return contextlib.nullcontext()
        return self._amp.autocast(device_type, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._amp, name)


@contextlib.contextmanager
def cuda_redirect(module, device):
    """Run code of ``module`` that hard-codes CUDA on ``device``.

    While active (one at a time, under a lock): ``Tensor.cuda()`` and ``Module.cuda()`` move to ``device`` (this
    is process-wide: other threads' ``.cuda()`` calls go there too meanwhile; on a machine without CUDA they
    would fail anyway), and the ``torch`` name in ``module`` is :class:`_TorchOn`. Restored on exit.
    """
    import torch

    device = torch.device(device)

    def to_device(self, *args, **kwargs):
        return self.to(device)

    with _REDIRECT_LOCK:
        saved = [(owner, owner.__dict__.get("cuda", _MISSING)) for owner in (torch.Tensor, torch.nn.Module)]
        saved_torch = vars(module).get("torch", _MISSING)
        try:
            for owner, _ in saved:
                owner.cuda = to_device
            if saved_torch is torch:
                module.torch = _TorchOn(torch, device)
            yield
        finally:
            for owner, old in saved:
                if old is _MISSING:
                    delattr(owner, "cuda")
                else:
                    owner.cuda = old
            if saved_torch is torch:
                module.torch = torch


@contextlib.contextmanager
def _get_device_answers(module, device):
    """Have ``module.get_device()`` (the GitHub file's device choice) answer ``device`` meanwhile."""
    with _REDIRECT_LOCK:
        saved = module.get_device
        module.get_device = lambda: device
        try:
            yield
        finally:
            module.get_device = saved


def _hard_codes_cuda(cls: type) -> bool:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return True         # no source to read: assume the wheel's behaviour
    return bool(re.search(r"\.cuda\(|device\s*=\s*['\"]cuda|autocast\(\s*['\"]cuda", source))


def _device_handling(cls: type, module, device, explicit: bool) -> str:
    """How ``device`` reaches the class: "argument", "get_device", "redirect" or "native" (nothing to do)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    if "device" in params:
        return "argument"
    if callable(getattr(module, "get_device", None)):
        return "get_device" if explicit else "native"
    if device.type != "cuda" and _hard_codes_cuda(cls):
        return "redirect"
    return "native"


# --- audio ------------------------------------------------------------------------------------------------------
def _to_array(out) -> np.ndarray:
    """A tensor / array of floats -> float32 mono [samples]."""
    if hasattr(out, "detach"):
        out = out.detach().float().cpu().numpy()
    arr = np.asarray(out, np.float32)
    return arr.mean(0) if arr.ndim == 2 and arr.shape[0] < arr.shape[1] else arr.reshape(-1)


def _wav_audio(out) -> np.ndarray:
    """What ``Token2wav.__call__`` returns (bytes of a WAV file; a waveform also accepted) -> float32 [samples]."""
    if isinstance(out, (bytes, bytearray, memoryview)):
        import soundfile as sf

        wav, sr = sf.read(io.BytesIO(bytes(out)), dtype="float32")
        if sr != SAMPLE_RATE:
            raise RuntimeError(f"Token2wav returned {sr} Hz audio, expected {SAMPLE_RATE}")
        return wav.mean(1) if wav.ndim == 2 else wav
    return _to_array(out)


def _pcm_audio(out) -> np.ndarray:
    """What ``Token2wav.stream`` returns (int16 little-endian PCM bytes; a waveform also accepted) -> float32."""
    if isinstance(out, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(out), dtype="<i2").astype(np.float32) / PCM_SCALE
    return _to_array(out)


class CosyVoiceToken2Wav(Detokenizer):
    """Adapter over step-audio2's ``Token2wav`` (see the module docstring for files, shapes and behaviour).

    Args:
        path: the Step-Audio-2-mini folder or its ``token2wav/`` folder.
        prompt_wav: reference voice; default: the first of :data:`PROMPT_NAMES` found beside the weights (the
            others found are the adapter's other :meth:`voices`).
        float16: run the flow-matching model in half precision (CUDA only).
        device: "cuda", "cuda:1", "cpu", ...; None: CUDA when available, else CPU.
        fallback: without ``Token2wav.stream``: "prefix" (re-synthesise the prefix per chunk) or "end"
            (synthesise once at ``flush()``).

    Attributes:
        streaming: whether the class has ``stream``/``set_stream_cache`` (else ``fallback`` is used).
        device_handling: how ``device`` reaches the class ("argument", "get_device", "redirect", "native").
    """

    sample_rate = SAMPLE_RATE
    num_tokens = NUM_CODES

    def __init__(self, path: str | Path = DEFAULT_FOLDER, prompt_wav: str | Path | None = None,
                 float16: bool = False, device: str | None = None, fallback: str = "prefix"):
        import torch

        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
        self.folder = _token2wav_folder(Path(path))
        self._voices = prompt_voices(self.folder, prompt_wav)
        self.prompt_wav = _default_prompt(self._voices, self.folder)
        self.voice = self.prompt_wav.stem
        cls, module = _import_token2wav()
        self.device = torch.device(device if device is not None else
                                   ("cuda" if torch.cuda.is_available() else "cpu"))
        if float16 and self.device.type != "cuda":
            raise ValueError(f"float16 needs a CUDA device (Token2wav autocasts to float16 on CUDA only); "
                             f"device is {self.device}")
        # the module whose globals the class's methods read (where its `torch` and `get_device` names live)
        self._module = sys.modules.get(cls.__module__, module)
        self.device_handling = _device_handling(cls, self._module, self.device, explicit=device is not None)
        params = inspect.signature(cls).parameters
        kwargs = {}
        if "float16" in params:
            kwargs["float16"] = float16
        elif float16:
            raise ValueError(f"{cls.__module__}.Token2wav takes no float16 argument")
        if self.device_handling == "argument":
            kwargs["device"] = str(self.device)
        self.streaming = _defines(cls, "stream") and _defines(cls, "set_stream_cache")
        self.fallback = fallback
        with self._on_device():
            self.impl = cls(str(self.folder), **kwargs)
        # the package keeps one stream cache per Token2wav: which stream holds it, shared by every voice's copy
        self._cache_owner: dict[str, "CosyVoiceStream | None"] = {"stream": None}

    def _on_device(self):
        """Context for every call into the class: sends its CUDA work to ``self.device`` where needed."""
        if self.device_handling == "redirect":
            return cuda_redirect(self._module, self.device)
        if self.device_handling == "get_device":
            return _get_device_answers(self._module, self.device)
        return contextlib.nullcontext()

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

    def synthesise(self, tokens) -> np.ndarray:
        """``Token2wav.__call__`` on ``tokens`` [N] (validated ints): float32 24 kHz audio as the class returns it
        (about ``960 * N`` samples, not trimmed)."""
        tokens = self.check_tokens(tokens)
        with self._on_device():
            out = self.impl([int(t) for t in tokens], str(self.prompt_wav))
        return _wav_audio(out)

    def decode(self, tokens) -> np.ndarray:
        """Whole utterance through the class's offline path (flow over all tokens at once): float32 24 kHz,
        exactly ``960 * len(tokens)`` samples."""
        tokens = self.check_tokens(tokens)
        if len(tokens) == 0:
            return np.zeros(0, np.float32)
        wav = self.synthesise(tokens)
        want = self.num_samples(len(tokens))
        return wav[:want] if len(wav) >= want else np.pad(wav, (0, want - len(wav)))

    def stream(self) -> "CosyVoiceStream":
        return CosyVoiceStream(self)


class CosyVoiceStream(DetokenizerStream):
    """One utterance through ``Token2wav.stream`` (of an adapter's streams only the last one to start decoding
    may go on: the package holds a single stream cache), or, for a class without it, through ``__call__`` as
    the adapter's ``fallback`` says."""

    exact_chunks = False

    def _reset_state(self) -> None:
        # the package's cache is set up when the utterance's first chunk is decoded, not on every reset
        self._armed = False
        self._tail: np.ndarray | None = None      # "prefix": the last synthesis' held-back samples

    def _decode(self, start: int, end: int, final: bool) -> np.ndarray:
        d: CosyVoiceToken2Wav = self.detokenizer
        if d.streaming:
            return self._decode_streaming(start, end, final)
        if d.fallback == "end":
            # nothing until the end; then the whole utterance in one synthesis
            return d.synthesise(self.tokens[:end]) if final else np.zeros(0, np.float32)
        return self._decode_prefix(end, final)

    def _decode_streaming(self, start: int, end: int, final: bool) -> np.ndarray:
        d: CosyVoiceToken2Wav = self.detokenizer
        if not self._armed:
            with d._on_device():
                d.impl.set_stream_cache(str(d.prompt_wav))
            d._active, self._armed = self, True
        elif d._active is not self:
            raise RuntimeError("another stream of this CosyVoiceToken2Wav started decoding since; step-audio2 keeps "
                               "one stream cache per Token2wav: finish one utterance before starting the next")
        if final and start == end:
            # nothing left to decode: return the 160 ms the vocoder held back after the last chunk
            tail = (getattr(d.impl, "hift_cache_dict", None) or {}).get("speech")
            return np.zeros(0, np.float32) if tail is None else _to_array(tail)
        window = self.tokens[start:end if final else end + d.lookahead_tokens]
        with d._on_device():
            out = d.impl.stream([int(t) for t in window], str(d.prompt_wav), last_chunk=final)
        return _pcm_audio(out)

    def _decode_prefix(self, end: int, final: bool) -> np.ndarray:
        """Re-synthesise tokens [0, end + lookahead) (or all at the end) and emit the samples after those already
        out, up to ``end``'s sample less :data:`CROSSFADE` held back (all of them at the end)."""
        d: CosyVoiceToken2Wav = self.detokenizer
        wav = d.synthesise(self.tokens[:end if final else end + d.lookahead_tokens])
        s0 = self.samples_emitted
        s1 = d.num_samples(end) - (0 if final else CROSSFADE)
        if len(wav) < s1 + CROSSFADE:
            wav = np.pad(wav, (0, s1 + CROSSFADE - len(wav)))
        out = wav[s0:s1].copy()
        if self._tail is not None:
            # the previous synthesis' last samples fade out while this one's fade in (raised cosine)
            n = min(len(self._tail), len(out))
            w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
            out[:n] = self._tail[:n] * (1 - w) + out[:n] * w
        self._tail = None if final else wav[s1:s1 + CROSSFADE].copy()
        return out.astype(np.float32, copy=False)


def load_cosyvoice(argument: str | None) -> CosyVoiceToken2Wav:
    """Registry factory: ``"cosyvoice"`` / ``"step-audio2"`` (checkpoints/Step-Audio-2-mini) or ``"cosyvoice:PATH"``."""
    return CosyVoiceToken2Wav(argument or DEFAULT_FOLDER)
