"""The cascaded baseline of the seed's table 1: ASR -> LLM -> TTS -> audio-driven animation.

    cascade = Cascade.nano("checkpoints/a2llm-nano")                 # the four stages at nano scale
    result = cascade.run(audio, mode="streaming")                    # or mode="batch"
    result.ttft_ms, result.ttfa_ms, result.rtf, result.text, result.motion

Each stage is interchangeable (the small protocols below). At nano scale they are the nano model's own ASR
subtask and text answer (:class:`NanoASR`, :class:`NanoLLM`), its TTS subtask with nano token2wav
(:class:`NanoTTS`) and the audio-only avatar (:class:`AudioAnimator`); at full size
``a2llm.baselines.cascade_full`` loads Whisper, a text LLM and a TTS from local folders.

Two modes, measured on one clock from the end of the user's speech:

* **batch** — each stage waits for the whole previous output: the transcript, then the whole answer text, then
  all of its speech, then the motion of all of it;
* **streaming** — stages pass chunks: the LLM's text goes to the TTS phrase by phrase (at punctuation, or every
  ``phrase_words`` words), each chunk of speech is animated as soon as it exists (with ``context_s`` of earlier
  speech as left context, only the new frames kept).

TTFT is the first speech token (the TTS's first audio token; for a TTS without tokens, its first samples), TTFA
the first motion frame, RTF the pipeline's compute time over the seconds of speech — the definitions of the
end-to-end engine (``a2llm.engine``), so the rows of table 1 compare.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

STAGES = ("asr", "llm", "tts", "detokenizer", "animation")
MODES = ("batch", "streaming")


# --- the stage interfaces ---------------------------------------------------------------------------------------
@dataclass
class Speech:
    """A piece of synthesised speech: ``pcm`` [n] float32 at ``sample_rate``; empty when only ``tokens`` new
    speech tokens exist yet (the vocoder holds them until its chunk is complete)."""

    pcm: np.ndarray
    sample_rate: int
    tokens: int = 0


class ASR(Protocol):
    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str: ...


class LLM(Protocol):
    def stream(self, text: str) -> Iterator[str]:
        """The answer to ``text``, as text pieces in order."""


class TTS(Protocol):
    sample_rate: int

    def start(self) -> None:
        """A new reply (streaming state such as the vocoder's is reset)."""

    def speak(self, text: str) -> Iterator[Speech]:
        """Speech of one phrase of the reply, in pieces (speech continues the previous phrase's)."""

    def finish(self) -> Iterator[Speech]:
        """The last speech held back (vocoder lookahead) once the reply's text is complete."""


class Animator(Protocol):
    def animate(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Speech [N] -> FLAME motion [round(25 N / sr), 58]."""


# --- the pipeline -----------------------------------------------------------------------------------------------
@dataclass
class CascadeResult:
    """One turn through the cascade. Times in ms from the end of the user's speech."""

    mode: str
    transcript: str
    text: str
    speech: np.ndarray
    sample_rate: int
    motion: np.ndarray
    ttft_ms: float
    ttfa_ms: float
    wall_ms: float
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def speech_s(self) -> float:
        return len(self.speech) / self.sample_rate

    @property
    def rtf(self) -> float:
        return self.wall_ms / 1000 / self.speech_s if len(self.speech) else float("nan")

    def as_dict(self) -> dict:
        return {"mode": self.mode, "transcript": self.transcript, "text": self.text, "ttft_ms": self.ttft_ms,
                "ttfa_ms": self.ttfa_ms, "rtf": self.rtf, "wall_ms": self.wall_ms, "speech_s": self.speech_s,
                "stages": dict(self.stages)}


class _Clock:
    def __init__(self):
        self.start = time.perf_counter()
        self.stages = dict.fromkeys(STAGES, 0.0)

    def now_ms(self) -> float:
        return 1000 * (time.perf_counter() - self.start)

    def timed(self, stage: str, it: Iterator):
        """Iterate ``it``, charging the time spent inside it to ``stage``."""
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.stages[stage] += 1000 * (time.perf_counter() - t)
                return
            self.stages[stage] += 1000 * (time.perf_counter() - t)
            yield item


_PUNCT = ".!?;:,"


def phrases(pieces: Iterator[str], phrase_words: int = 6) -> Iterator[str]:
    """Group streamed text pieces into phrases for a TTS: cut after a word ending in punctuation or after
    ``phrase_words`` words. A word counts once whitespace follows it (or the text ends), so words are never
    split across phrases."""
    buf = ""
    for piece in pieces:
        buf += piece
        while True:
            cut = _cut(buf, phrase_words, final=False)
            if cut is None:
                break
            phrase, buf = buf[:cut].strip(), buf[cut:]
            if phrase:
                yield phrase
    while buf.strip():
        cut = _cut(buf, phrase_words, final=True) or len(buf)
        phrase, buf = buf[:cut].strip(), buf[cut:]
        yield phrase


def _cut(text: str, n: int, final: bool) -> int | None:
    """End index of the first phrase among the complete words of ``text``, or None if none is complete."""
    words = list(re.finditer(r"\S+", text))
    for i, m in enumerate(words):
        complete = m.end() < len(text) or final
        if not complete:
            return None
        if m.group()[-1] in _PUNCT or i + 1 == n:
            return m.end()
    return None


class Cascade:
    """ASR -> LLM -> TTS -> animation with interchangeable stages (see the module docstring)."""

    def __init__(self, asr: ASR, llm: LLM, tts: TTS, animator: Animator, phrase_words: int = 6,
                 context_s: float = 0.4):
        self.asr, self.llm, self.tts, self.animator = asr, llm, tts, animator
        self.phrase_words, self.context_s = phrase_words, context_s

    @classmethod
    def nano(cls, checkpoint: str | Path, **kwargs) -> "Cascade":
        """The four stages from an A²-LLM-nano checkpoint folder (its audio-only baseline animates)."""
        lm = NanoLM.from_checkpoint(checkpoint)
        from a2llm.lalm.detokenizer import load_detokenizer

        detok = load_detokenizer(checkpoint)
        if detok is None:
            raise FileNotFoundError(f"{checkpoint} has no detokenizer part: the cascade's TTS needs one")
        animator = AudioAnimator.from_checkpoint(checkpoint, rvq=lm.model.motion_tokenizer)
        return cls(NanoASR(lm), NanoLLM(lm), NanoTTS(lm.twin(), detok), animator, **kwargs)

    def run(self, audio: np.ndarray, sample_rate: int = 16000, mode: str = "streaming") -> CascadeResult:
        """One spoken turn -> its answer's text, speech and motion, with the latencies of ``mode``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        clock = _Clock()
        t = time.perf_counter()
        transcript = self.asr.transcribe(np.asarray(audio, np.float32), sample_rate)
        clock.stages["asr"] += 1000 * (time.perf_counter() - t)
        run = self._batch if mode == "batch" else self._streaming
        text, speech, motion, ttft, ttfa = run(transcript, clock)
        vocoder = getattr(self.tts, "vocoder_ms", 0.0)       # a TTS that can tell its vocoder's share apart
        clock.stages["tts"] -= vocoder
        clock.stages["detokenizer"] += vocoder
        return CascadeResult(mode, transcript, text, speech, self.tts.sample_rate, motion, ttft, ttfa,
                             clock.now_ms(), clock.stages)

    def _batch(self, transcript: str, clock: _Clock):
        text = "".join(clock.timed("llm", self.llm.stream(transcript))).strip()
        self.tts.start()
        pcm, ttft = [], float("nan")
        for piece in [*clock.timed("tts", self.tts.speak(text)), *clock.timed("detokenizer", self.tts.finish())]:
            if piece.tokens and ttft != ttft:
                ttft = clock.now_ms()
            pcm.append(piece.pcm)
        speech = np.concatenate(pcm) if pcm else np.zeros(0, np.float32)
        motion = self._animate(speech, 0, clock)
        return text, speech, motion, ttft, clock.now_ms()

    def _streaming(self, transcript: str, clock: _Clock):
        self.tts.start()
        text, pcm, motion = [], [], []
        ttft = ttfa = float("nan")
        done = 0                                       # samples already animated
        sr = self.tts.sample_rate
        pieces = (p for p in clock.timed("llm", self.llm.stream(transcript)) if not text.append(p))

        def speech():                                  # every phrase's speech, then the vocoder's tail
            for phrase in phrases(pieces, self.phrase_words):
                yield from clock.timed("tts", self.tts.speak(phrase))
            yield from clock.timed("detokenizer", self.tts.finish())

        for piece in speech():
            ttft = clock.now_ms() if piece.tokens and ttft != ttft else ttft
            if len(piece.pcm):                         # a token-only piece adds no speech to animate
                pcm.append(piece.pcm)
                done, ttfa = self._animate_new(pcm, done, motion, clock, ttfa)
        speech = np.concatenate(pcm) if pcm else np.zeros(0, np.float32)
        frames = int(round(25 * len(speech) / sr))
        if done and frames > done // (sr // 25):     # the last, partial frame: it counts from half a frame on
            motion.append(self._animate(speech, done, clock))
        out = np.concatenate(motion)[:frames] if motion else np.zeros((0, 58), np.float32)
        return "".join(text).strip(), speech, out, ttft, ttfa

    def _animate_new(self, pcm: list[np.ndarray], done: int, motion: list[np.ndarray], clock: _Clock,
                     ttfa: float) -> tuple[int, float]:
        """Animate the speech after sample ``done`` whose frames are complete (whole 40 ms frames)."""
        sr = self.tts.sample_rate
        speech = np.concatenate(pcm)
        step = sr // 25
        end = len(speech) // step * step
        if end <= done:
            return done, ttfa
        frames = self._animate(speech[:end], done, clock)
        motion.append(frames)
        return end, (clock.now_ms() if ttfa != ttfa else ttfa)

    def _animate(self, speech: np.ndarray, start: int, clock: _Clock) -> np.ndarray:
        """Frames of ``speech[start:]``, animated with up to ``context_s`` of earlier speech as context."""
        if len(speech) <= start:
            return np.zeros((0, 58), np.float32)
        sr = self.tts.sample_rate
        step = sr // 25
        left = max(0, start - int(self.context_s * sr) // step * step)
        t = time.perf_counter()
        frames = self.animator.animate(speech[left:], sr)
        clock.stages["animation"] += 1000 * (time.perf_counter() - t)
        skip = (start - left) // step
        return np.asarray(frames[skip:], np.float32)


# --- nano stages ------------------------------------------------------------------------------------------------
class NanoLM:
    """One A²-LLM-nano decoder for the cascade's language stages: a prompt in, greedy tokens out, on the engine's
    lean static-cache decoder (the same speed path as the end-to-end engine)."""

    def __init__(self, model, tokenizer):
        from a2llm.engine.lean import LeanDecoder
        from a2llm.generate import layout_for
        from a2llm.lalm.prompt import PromptBuilder

        if not all(layer.merged for layer in model.lora_layers()):
            model.merge_lora()
        self.model, self.tok = model.eval(), tokenizer
        self.layout = layout_for(tokenizer)
        self.prompts = PromptBuilder(tokenizer, self.layout)
        self.decoder = LeanDecoder(model.backbone, 2048)

    @classmethod
    def from_checkpoint(cls, folder: str | Path) -> "NanoLM":
        from a2llm.model import A2LLM, load_checkpoint_tokenizer

        return cls(A2LLM.from_pretrained(folder), load_checkpoint_tokenizer(folder))

    def twin(self) -> "NanoLM":
        """The same weights with a cache of its own (the TTS runs while the LLM's answer is unfinished)."""
        other = object.__new__(NanoLM)
        other.__dict__.update(self.__dict__)
        from a2llm.engine.lean import LeanDecoder

        other.decoder = LeanDecoder(self.model.backbone, 2048)
        return other

    @torch.no_grad()
    def open(self, task: str, human, reply: str) -> torch.Tensor:
        """Start a fresh dialogue: the system prompt of ``task``, one human turn (text or ``Audio``), the reply
        opened as ``reply`` ("text" / "speech"). Returns the first logits [V]."""
        from a2llm.data.collate import SYSTEM_PROMPTS
        from a2llm.lalm.prompt import Message

        prompt = self.prompts.build([Message("system", SYSTEM_PROMPTS[task]), Message("human", human)], reply=reply)
        ids = prompt.input_ids[None]
        bb = self.model.backbone
        if prompt.audios:
            audio = torch.from_numpy(prompt.audios[0])[None, None]
            embeds = bb.embed(ids, audio, torch.tensor([[audio.shape[-1]]]), prompt.audio_patch_mask[None])
        else:
            embeds = bb.embed(ids)
        self.decoder.reset()
        return self.decoder.forward(embeds)[0][0, -1]

    def step(self, token: int) -> torch.Tensor:
        return self.decoder.step(token)[0]


def _text_stream(lm: NanoLM, logits: torch.Tensor, max_tokens: int, counter=None) -> Iterator[str]:
    """Greedy decoding until ``<|EOT|>`` (or ``<tts_end>``), yielding the decoded text's deltas (audio tokens in
    the reply are fed back but not shown). ``counter.decoded`` (when given) counts the steps."""
    L, ids, out = lm.layout, [], ""
    for _ in range(max_tokens):
        nxt = int(logits.argmax())
        if nxt in (L.eot, L.tts_end):
            break
        if counter is not None:
            counter.decoded += 1
        ids.append(nxt)
        full = lm.tok.decode(lm.layout.text_ids(ids), skip_special_tokens=True)
        if full.startswith(out) and len(full) > len(out):
            yield full[len(out):]
            out = full
        logits = lm.step(nxt)


class NanoASR:
    """Speech -> text with the nano model's ASR subtask."""

    def __init__(self, lm: NanoLM, max_tokens: int = 80):
        self.lm, self.max_tokens = lm, max_tokens

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        from a2llm.generate import pad_question
        from a2llm.lalm.prompt import Audio

        if sample_rate != 16000:
            raise ValueError(f"the nano ASR takes 16 kHz speech, got {sample_rate} Hz (resample first)")
        # The user's clip gets the silence margin nano's training questions have, as in the end-to-end engine.
        logits = self.lm.open("asr", Audio(pad_question(audio, sample_rate), sample_rate), reply="text")
        return "".join(_text_stream(self.lm, logits, self.max_tokens)).strip()


class NanoLLM:
    """Text -> answer text: the nano model answering a typed question (TQA), its text kept.

    Nano has no text-only reply: it was trained to answer with text and audio tokens interleaved (one text token,
    then four audio tokens), and masking the audio tokens out derails it (measured: word salad), so this stage
    decodes the whole interleaved answer and passes on its text. That makes it about five decode steps per text
    token, dearer than a text LLM of the same size would be: the cascade's LLM stage is charged for speech it
    throws away (``decoded`` counts the steps, so reports can say so)."""

    def __init__(self, lm: NanoLM, max_tokens: int = 400):
        self.lm, self.max_tokens = lm, max_tokens
        self.decoded = 0

    def stream(self, text: str) -> Iterator[str]:
        logits = self.lm.open("tqa", text, reply="speech")
        self.decoded = 0
        for piece in _text_stream(self.lm, logits, self.max_tokens, self):
            yield piece


class NanoTTS:
    """Text -> speech with the nano model's TTS subtask (the text placed in the training layout's text slots, the
    model choosing every audio token) and the nano token2wav stream."""

    def __init__(self, lm: NanoLM, detokenizer, tokens_per_text_token: int = 12):
        # Nano speaks ~4 audio tokens (0.16 s) per text token; a phrase that runs past 12 per text token has lost
        # its way (babbling after a short phrase), so it is cut there.
        from a2llm.generate import word_start_mask

        self.lm, self.detok, self.per_text = lm, detokenizer, tokens_per_text_token
        self.word_start = word_start_mask(lm.tok)      # once: it reads the whole vocabulary
        self.sample_rate = detokenizer.sample_rate
        self.stream = None
        self.vocoder_ms = 0.0          # of the time in speak(), what the vocoder took (the rest is the LM)

    def start(self) -> None:
        self.stream = self.detok.stream()
        self.vocoder_ms = 0.0

    def speak(self, text: str) -> Iterator[Speech]:
        from a2llm.generate import TextSchedule, WordPacing, text_layout_of

        if self.stream is None:
            raise RuntimeError("call start() before speak(): a reply's speech runs on one vocoder stream")
        L = self.lm.layout
        ids = self.lm.tok.encode(text.strip(), add_special_tokens=False)       # as the TTS subtask was trained
        sched = TextSchedule(ids, L, text_layout=text_layout_of(self.lm.model),
                             pacing=WordPacing(self.word_start, L))
        logits = self.lm.open("tts", text.strip(), reply="speech")
        for _ in range(self.per_text * len(ids) + 8):
            nxt = sched.choose(logits)
            if nxt in (L.eot, L.tts_end):
                break
            if L.is_audio(nxt):
                t = time.perf_counter()
                chunks = self.stream.push([nxt - L.audio_offset])
                self.vocoder_ms += 1000 * (time.perf_counter() - t)
                yield Speech(np.zeros(0, np.float32), self.sample_rate, tokens=1)
                for pcm in chunks:
                    yield Speech(pcm, self.sample_rate)
            logits = self.lm.step(nxt)

    def finish(self) -> Iterator[Speech]:
        tail = self.stream.flush() if self.stream is not None else np.zeros(0, np.float32)
        if len(tail):
            yield Speech(tail, self.sample_rate)


class AudioAnimator:
    """Speech -> motion with an audio-only avatar (FaceFormer-style: no language model) and its RVQ decoder."""

    def __init__(self, avatar, rvq):
        self.avatar, self.rvq = avatar, rvq

    @classmethod
    def from_checkpoint(cls, folder: str | Path, rvq=None) -> "AudioAnimator":
        """The audio-only baseline of an A²-LLM checkpoint; ``rvq``: its motion tokenizer when already loaded."""
        from a2llm.baselines.audio_only import AudioOnlyAvatar
        from a2llm.model import A2LLM, read_manifest

        folder = Path(folder)
        manifest = read_manifest(folder)
        rel = manifest.get("baselines", {}).get("audio-only")
        if rel is None:
            raise FileNotFoundError(f"{folder}/a2llm.json lists no 'audio-only' baseline: train one with "
                                    "`python -m a2llm.train audio-only` (a2llm.train) and assemble the checkpoint")
        rvq = rvq if rvq is not None else A2LLM.from_pretrained(folder).motion_tokenizer
        return cls(AudioOnlyAvatar.from_pretrained(folder / rel), rvq)

    def animate(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.avatar.animate(audio, sample_rate, self.rvq)
