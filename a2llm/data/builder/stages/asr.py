"""Stage ``asr``: transcribe each item's speech with Whisper (transformers), with a confidence score.

The confidence is Whisper's own ``avg_logprob``: the mean log-probability of the generated tokens (up to and
including end-of-text) under the decoder's processed distribution. The seed's pipeline transcribes with
Whisper; low ``avg_logprob`` flags mumbled, noisy or non-speech audio for the intelligibility filter.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from a2llm.data.builder.manifest import Record
from a2llm.data.builder.media import read_wav
from a2llm.data.builder.runner import ItemError, Stage
from a2llm.data.builder.stages._common import load_pretrained, resolve_device, resolve_dtype
from a2llm.data.builder.text import words


@dataclass(frozen=True)
class AsrConfig:
    """Options of the ``asr`` stage.

    Attributes:
        model: Hugging Face id or local folder of a Whisper checkpoint.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        dtype: ``"auto"`` (float16 on CUDA, float32 on CPU), ``"float32"``, ``"float16"``, ``"bfloat16"``.
        language: spoken language passed to Whisper (``"en"``), or None to let it detect the language
            (required for English-only ``*.en`` checkpoints, which take no language token).
        max_new_tokens: cap on generated tokens (Whisper's decoder holds 448 positions in all).
    """

    model: str = "openai/whisper-large-v3"
    device: str = "auto"
    dtype: str = "auto"
    language: str | None = "en"
    max_new_tokens: int = 200


@dataclass(frozen=True)
class Transcript:
    """What an ASR model returns for one utterance.

    Attributes:
        text: the transcript, stripped.
        avg_logprob: mean log-probability of the generated tokens (closer to 0 = more confident).
        num_tokens: how many tokens were generated.
    """

    text: str
    avg_logprob: float
    num_tokens: int


class ASRModel(Protocol):
    """What the ``asr`` stage needs of a speech recogniser."""

    name: str

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe [N] float32 mono audio at ``sample_rate``."""
        ...


class WhisperASR:
    """A transformers Whisper model behind the :class:`ASRModel` interface (greedy decoding).

    Args:
        model: a ``WhisperForConditionalGeneration`` (already on its device, in eval mode).
        processor: the matching ``WhisperProcessor`` (feature extractor + tokenizer).
        language: language token to force, or None to detect.
        max_new_tokens: cap on generated tokens.
        name: what to record as the model in outputs.
    """

    #: Whisper's encoder sees 30 s windows; longer input would need long-form (sequential) decoding.
    WINDOW_S = 30.0
    SAMPLE_RATE = 16000

    def __init__(self, model: Any, processor: Any, *, language: str | None = "en", max_new_tokens: int = 200,
                 name: str | None = None):
        if language and not getattr(model.generation_config, "lang_to_id", None):
            raise ValueError(f"this Whisper checkpoint is English-only (no language tokens), so language={language!r} "
                             "cannot be forced; set asr.language to null")
        self.model = model
        self.processor = processor
        self.language = language
        self.max_new_tokens = max_new_tokens
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "auto", dtype: str = "auto",
                        language: str | None = "en", max_new_tokens: int = 200) -> WhisperASR:
        """Load a Whisper checkpoint (Hugging Face id or local folder)."""
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        device = resolve_device(device)
        model = load_pretrained("ASR", name_or_path, lambda: WhisperForConditionalGeneration.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype, device)))
        processor = load_pretrained("ASR", name_or_path, lambda: WhisperProcessor.from_pretrained(name_or_path))
        return cls(model.to(device).eval(), processor, language=language, max_new_tokens=max_new_tokens,
                   name=name_or_path)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe one utterance.

        Args:
            audio: [N] float32 mono samples.
            sample_rate: must be 16000 (what Whisper's feature extractor is built for).

        Returns:
            A :class:`Transcript`.
        """
        import torch

        if sample_rate != self.SAMPLE_RATE:
            raise ValueError(f"Whisper takes {self.SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        duration = audio.shape[0] / sample_rate
        if duration > self.WINDOW_S:
            raise ItemError(f"utterance is {duration:.1f} s long; Whisper transcribes windows of {self.WINDOW_S:.0f} s. "
                            "Split long recordings into utterances before building (see docs/BUILDER.md)")
        feats = self.processor(audio, sampling_rate=sample_rate, return_tensors="pt").input_features
        feats = feats.to(device=self.model.device, dtype=self.model.dtype)
        kwargs: dict[str, Any] = {"language": self.language} if self.language else {}
        with torch.inference_mode():
            out = self.model.generate(feats, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      return_dict_in_generate=True, output_scores=True, **kwargs)
        # The returned sequence starts with the forced prompt (start, language, task, no-timestamps); the
        # scores cover only the generated steps, which are therefore its last len(scores) tokens.
        steps = len(out.scores)
        generated = out.sequences[0, out.sequences.shape[1] - steps:]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        logprobs = []
        for t in range(steps):
            token = int(generated[t])
            logprobs.append(float(torch.log_softmax(out.scores[t][0].float(), dim=-1)[token]))
            if token in eos_ids:
                break
        text = self.processor.batch_decode(generated[None], skip_special_tokens=True)[0].strip()
        avg = float(np.mean(logprobs)) if logprobs else float("-inf")
        return Transcript(text=text, avg_logprob=avg, num_tokens=len(logprobs))


class AsrStage(Stage):
    """Transcribe ``audio/audio.wav``.

    Output: ``text``, ``avg_logprob``, ``num_tokens``, ``num_words``, ``model``. An empty transcript is a
    failure (nothing to build a QA pair from).

    Args:
        config: options (used to load the model when ``model`` is not given).
        model: an already-constructed :class:`ASRModel` (e.g. a :class:`WhisperASR`), used as is.
    """

    name = "asr"
    requires = ("audio",)

    def __init__(self, config: AsrConfig | None = None, *, model: ASRModel | None = None):
        self.config = config or AsrConfig()
        self.model = model

    def load(self) -> None:
        if self.model is None:
            c = self.config
            self.model = WhisperASR.from_pretrained(c.model, device=c.device, dtype=c.dtype, language=c.language,
                                                    max_new_tokens=c.max_new_tokens)

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        assert self.model is not None, "load() was not called"
        audio, rate = read_wav(record.path(record.output("audio")["audio"]))
        result = self.model.transcribe(audio, rate)
        if not words(result.text):
            raise ItemError("the transcript is empty (no speech recognised)",
                            {"text": result.text, "num_tokens": result.num_tokens})
        return {"text": result.text, "avg_logprob": result.avg_logprob, "num_tokens": result.num_tokens,
                "num_words": len(words(result.text)), "model": self.model.name}
