"""Detokenizers: 25 Hz audio tokens -> speech, whole or streamed, behind one interface.

    from a2llm.lalm.detokenizer import load_detokenizer
    detok = load_detokenizer("checkpoints/a2llm-nano")     # or "nano", "cosyvoice:checkpoints/Step-Audio-2-mini"
    pcm = detok.decode(tokens)                              # float32 [len(tokens) * samples_per_token]
    with detok.stream() as s:                               # one typed state object per utterance
        for piece in token_pieces:
            for chunk in s.push(piece):                     # a chunk each time 25 new + 3 lookahead tokens are in
                play(chunk, start=s.samples_emitted - len(chunk))
        play(s.flush())                                     # the rest, without lookahead

Timeline: token k covers [k / 25, (k + 1) / 25) s of the speech, so the total audio of an utterance is exactly
``len(tokens) * samples_per_token`` samples and speech and motion (25 fps) share one clock. A stream enforces this
at ``flush()``.

Voices: ``detok.voices()`` names the voices a detokenizer can speak with (the default first) and
``detok.with_voice(name)`` is the same detokenizer, sharing its weights, in another voice (nano: vocal-tract-length
warps of its one trained voice; CosyVoice: the reference recordings found beside the weights). An unknown name is
a ValueError that lists the voices.

Registry: :func:`load_detokenizer` takes ``"name"`` / ``"name:argument"`` for registered factories (``nano``,
``cosyvoice``, ``step-audio2`` are built in, see :func:`register_detokenizer`) or a path: an A²-LLM checkpoint
folder (its ``a2llm.json`` part ``"detokenizer"``), a nano token2wav component folder (``config.json`` with
``"component": "token2wav"``), or a Step-Audio-2 token2wav folder (``flow.pt``, ``hift.pt`` ...).
"""
from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np

#: Key of the detokenizer in an A²-LLM checkpoint's ``a2llm.json`` "parts".
MANIFEST_PART = "detokenizer"


class Detokenizer(ABC):
    """Audio tokens [N] -> mono float32 speech at :attr:`sample_rate`, whole or in chunks.

    Subclasses set :attr:`sample_rate` and :attr:`num_tokens` and implement :meth:`stream`. The default
    :meth:`decode` runs a stream over the whole utterance, so whole and streamed decoding share one code path.
    """

    sample_rate: int            # output samples per second
    num_tokens: int             # valid token ids are [0, num_tokens)
    token_rate: int = 25        # tokens per second
    chunk_tokens: int = 25      # tokens decoded per streamed chunk
    lookahead_tokens: int = 3   # future tokens a chunk waits for

    @property
    def samples_per_token(self) -> int:
        """Output samples per token (``sample_rate / token_rate``; an integer by construction)."""
        if self.sample_rate % self.token_rate:
            raise ValueError(f"sample_rate {self.sample_rate} is not a multiple of token_rate {self.token_rate}")
        return self.sample_rate // self.token_rate

    def num_samples(self, num_tokens: int) -> int:
        """Length of the speech for ``num_tokens`` tokens (exact: tokens / token_rate seconds)."""
        return int(num_tokens) * self.samples_per_token

    # --- voices -------------------------------------------------------------------------------------------------
    #: The voice this detokenizer speaks with (one of :meth:`voices`).
    voice: str = "default"

    def voices(self) -> list[str]:
        """Names of the voices :meth:`with_voice` takes, the default voice first (base: just the one voice)."""
        return [self.voice]

    def check_voice(self, name: str | None) -> str:
        """A voice name of :meth:`voices` (None: the default voice, the first), or a ValueError listing them."""
        voices = self.voices()
        if name is None or name == "":
            return voices[0]
        if name not in voices:
            raise ValueError(f"unknown voice {name!r}: {type(self).__name__} has the voices {voices}")
        return name

    def with_voice(self, name: str | None) -> "Detokenizer":
        """This detokenizer speaking with voice ``name`` (None: the default voice).

        The result shares the weights (it is ``self`` when ``name`` is already its voice); a voice never changes
        the timeline (``num_samples``), so speech stays in sync with the motion."""
        name = self.check_voice(name)
        return self if name == self.voice else self._with_voice(name)

    def _with_voice(self, name: str) -> "Detokenizer":
        """A copy of ``self`` with voice ``name`` (a valid voice other than ``self.voice``): for subclasses that
        list more than one voice."""
        raise NotImplementedError(f"{type(self).__name__} lists voice {name!r} but cannot switch to it")

    def check_tokens(self, tokens) -> np.ndarray:
        """Validate tokens: a 1-D sequence of integers in [0, num_tokens) -> int64 [N]."""
        arr = np.asarray(tokens)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.ndim != 1:
            raise ValueError(f"tokens must be a 1-D sequence [N], got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_tokens):
            bad = arr[(arr < 0) | (arr >= self.num_tokens)][0]
            raise ValueError(f"token {int(bad)} is out of range: {type(self).__name__} takes ids in "
                             f"[0, {self.num_tokens})")
        return arr.astype(np.int64)

    def decode(self, tokens) -> np.ndarray:
        """Whole utterance: tokens [N] -> float32 [N * samples_per_token]."""
        with self.stream() as s:
            parts = s.push(tokens)
            parts.append(s.flush())
        return np.concatenate(parts).astype(np.float32, copy=False)

    @abstractmethod
    def stream(self) -> "DetokenizerStream":
        """A fresh streaming state for one utterance (reusable after ``flush()`` or ``reset()``)."""


class DetokenizerStream(ABC):
    """Streaming state of one utterance: the chunk schedule lives here, the decoding in subclasses.

    A chunk of ``chunk_tokens`` tokens is decoded as soon as ``chunk_tokens + lookahead_tokens`` undecoded tokens
    are buffered (the lookahead tokens stay undecoded and start the next chunk); the utterance's first chunks may be
    shorter (the detokenizer's ``chunk_schedule``, or ``first_chunk_tokens`` for the first alone), so that speech
    starts sooner; ``flush()`` decodes the rest
    without lookahead and resets the state. Use as a context manager (``with detok.stream() as s``) to reset on
    exit.

    Subclasses implement :meth:`_reset_state` and :meth:`_decode`. With ``exact_chunks`` (class attribute) every
    chunk must be exactly ``chunk_tokens * samples_per_token`` samples; otherwise chunk lengths may vary (a
    vocoder that holds back a tail) and ``flush()`` trims or zero-pads its piece so that the utterance is exactly
    ``num_samples(tokens_pushed)`` long.
    """

    exact_chunks: ClassVar[bool] = True

    def __init__(self, detokenizer: Detokenizer):
        self.detokenizer = detokenizer
        self.tokens: np.ndarray = np.zeros(0, np.int64)   # every token pushed in this utterance
        self.tokens_decoded: int = 0                         # tokens [0, tokens_decoded) are decoded
        self.samples_emitted: int = 0                        # samples returned so far (the next chunk's start)
        self.reset()

    # --- the public streaming API -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the utterance (tokens, audio history and decoder caches)."""
        self.tokens = np.zeros(0, np.int64)
        self.tokens_decoded = 0
        self.chunks_decoded = 0
        self.samples_emitted = 0
        self._reset_state()

    @property
    def tokens_pushed(self) -> int:
        return len(self.tokens)

    @property
    def seconds_emitted(self) -> float:
        """Start time (s) of the next chunk on the utterance's timeline."""
        return self.samples_emitted / self.detokenizer.sample_rate

    def push(self, tokens) -> list[np.ndarray]:
        """Add tokens [n]; returns the chunks (float32 [samples]) that became decodable, oldest first."""
        d = self.detokenizer
        self.tokens = np.concatenate([self.tokens, d.check_tokens(tokens)])
        chunks = []
        while self.tokens_pushed - self.tokens_decoded >= self._chunk() + d.lookahead_tokens:
            start, end = self.tokens_decoded, self.tokens_decoded + self._chunk()
            chunks.append(self._emit(self._decode(start, end, final=False), start, end))
            self.tokens_decoded = end
            self.chunks_decoded += 1
        return chunks

    def _chunk(self) -> int:
        """Tokens in the next chunk: the detokenizer's ``chunk_schedule`` (sizes of its first chunks: speech starts
        sooner and the next pieces follow while the first still plays), else ``first_chunk_tokens`` for the first;
        then ``chunk_tokens``."""
        d = self.detokenizer
        schedule = getattr(d, "chunk_schedule", None)
        if schedule is None:
            schedule = (d.first_chunk_tokens,) if hasattr(d, "first_chunk_tokens") else ()
        return schedule[self.chunks_decoded] if self.chunks_decoded < len(schedule) else d.chunk_tokens

    def flush(self) -> np.ndarray:
        """End of utterance: decode the remaining tokens without lookahead, then reset. float32 [samples]."""
        start, end = self.tokens_decoded, self.tokens_pushed
        pcm = self._decode(start, end, final=True) if end > start or self.samples_emitted else np.zeros(0)
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        want = self.detokenizer.num_samples(end) - self.samples_emitted
        if len(pcm) != want:
            if self.exact_chunks:
                raise RuntimeError(f"{type(self).__name__} decoded {len(pcm)} samples for tokens [{start}, {end}), "
                                   f"expected {want}")
            # keep the shared timeline exact: the vocoder's tail is cut or padded to the utterance's end
            pcm = pcm[:max(want, 0)] if len(pcm) > want else np.pad(pcm, (0, want - len(pcm)))
        self.reset()
        return pcm

    def __enter__(self) -> "DetokenizerStream":
        return self

    def __exit__(self, *exc) -> None:
        self.reset()

    # --- for subclasses -----------------------------------------------------------------------------------------
    @abstractmethod
    def _reset_state(self) -> None:
        """Clear the decoder's own caches (called by ``reset()``)."""

    @abstractmethod
    def _decode(self, start: int, end: int, final: bool) -> np.ndarray:
        """Decode tokens [start, end) of ``self.tokens``.

        When not ``final``, ``self.tokens[end:end + lookahead_tokens]`` are available as lookahead; when ``final``
        ``end`` is the utterance's end (possibly ``start == end`` after earlier chunks: emit any held-back tail).
        """

    def _emit(self, pcm: np.ndarray, start: int, end: int) -> np.ndarray:
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        want = (end - start) * self.detokenizer.samples_per_token
        if self.exact_chunks and len(pcm) != want:
            raise RuntimeError(f"{type(self).__name__} decoded {len(pcm)} samples for tokens [{start}, {end}), "
                               f"expected {want}")
        self.samples_emitted += len(pcm)
        return pcm


# --- registry ---------------------------------------------------------------------------------------------------
Factory = Callable[[str | None], Detokenizer]

# name -> factory(argument); built-ins are imported on first use so that this module stays light
_REGISTRY: dict[str, Factory] = {}
_BUILTIN: dict[str, tuple[str, str]] = {
    "nano": ("a2llm.lalm.nano_token2wav", "load_nano"),
    "cosyvoice": ("a2llm.lalm.cosyvoice", "load_cosyvoice"),
    "step-audio2": ("a2llm.lalm.cosyvoice", "load_cosyvoice"),
}


def register_detokenizer(name: str, factory: Factory) -> None:
    """Make ``load_detokenizer("name")`` / ``("name:argument")`` call ``factory(argument or None)``."""
    if not name or ":" in name or "/" in name:
        raise ValueError(f"detokenizer name {name!r} must be non-empty without ':' or '/'")
    _REGISTRY[name] = factory


def registered_detokenizers() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def _factory(name: str) -> Factory | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        module, attr = _BUILTIN[name]
        return getattr(importlib.import_module(module), attr)
    return None


def load_detokenizer(spec: str | Path | Detokenizer) -> Detokenizer:
    """A detokenizer from a registry spec or a folder (see the module docstring for the accepted forms)."""
    if isinstance(spec, Detokenizer):
        return spec
    text = str(spec)
    name, _, arg = text.partition(":")
    factory = _factory(name)
    if factory is not None:
        return factory(arg or None)
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"{text!r} is neither a registered detokenizer ({registered_detokenizers()}, "
                                "optionally 'name:argument') nor an existing folder")
    return _load_folder(path)


def _load_folder(path: Path) -> Detokenizer:
    manifest = path / "a2llm.json"
    if manifest.exists():
        parts = json.loads(manifest.read_text()).get("parts", {})
        if MANIFEST_PART not in parts:
            raise FileNotFoundError(f"{manifest} names no {MANIFEST_PART!r} part (has {sorted(parts)})")
        return _load_folder(path / parts[MANIFEST_PART])
    config = path / "config.json"
    if config.exists():
        component = json.loads(config.read_text()).get("component")
        if component == "token2wav":
            return _factory("nano")(str(path))
        raise ValueError(f"{config} holds a {component!r} component, not a detokenizer ('token2wav')")
    from a2llm.lalm.cosyvoice import looks_like_token2wav_folder

    if looks_like_token2wav_folder(path):
        return _factory("cosyvoice")(str(path))
    raise FileNotFoundError(f"{path} holds no detokenizer: expected a2llm.json (part {MANIFEST_PART!r}), a nano "
                            "token2wav folder (config.json + model.safetensors) or a Step-Audio-2 token2wav "
                            "folder (flow.yaml, flow.pt, hift.pt, campplus.onnx, speech_tokenizer_v2_25hz.onnx)")
