"""FLAME-QA subtasks -> interleaved token sequences with loss masks and motion targets.

Every sample becomes one dialogue in the Step-Audio-2 chat format (a2llm.lalm.tokens)::

    <|BOT|>system\\n{task prompt}<|EOT|>
    <|BOT|>human\\n{earlier turn}<|EOT|> <|BOT|>assistant\\n{earlier answer}<|EOT|> ...   (multi-turn context)
    <|BOT|>human\\n{<audio_start><audio_patch>×n<audio_end> | text}<|EOT|>
    <|BOT|>assistant\\n<tts_start>{text and audio tokens interleaved}<tts_end><|EOT|>    (ASR: plain text)

The assistant's content and closing <|EOT|> carry the loss (``labels``); everything else is -100.
Response audio tokens are 25 Hz, like motion frames, so the k-th audio token of the answer is motion
frame k: ``audio_token_positions[b, k]`` is that token's position in ``input_ids[b]``, and the Motion
Connector reads the LLM hidden states at those positions (DESIGN.md).

Subtasks (seed §5.3): AQAA (question audio -> spoken answer + motion), TQA (typed question -> spoken
answer + motion), Repeat (answer audio -> same speech + motion), TTS (answer text -> speech + motion),
ASR (question audio -> its text).
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from a2llm.data.format import FlameQASample
from a2llm.lalm.tokens import TokenLayout, audio_patch_counts, is_step_audio2, ta4_interleave

TASKS = ("aqaa", "tqa", "repeat", "tts", "asr")
TEXT_LAYOUTS = ("chunked", "word", "ta4")
SPEECH_TASKS = ("aqaa", "tqa", "repeat", "tts")
SYSTEM_PROMPTS = {
    "aqaa": "You are a friendly, expressive avatar. Answer the user with speech.",
    "tqa": "You are a friendly, expressive avatar. Answer the user with speech.",
    "repeat": "Repeat what the user says with speech.",
    "tts": "Read the user's text aloud.",
    "asr": "Transcribe the user's speech.",
}
IGNORE = -100


@dataclass(frozen=True)
class CollatorConfig:
    """How sequences are built.

    Attributes:
        text_layout: where the answer's text tokens go among its audio tokens inside <tts_start>...<tts_end>.
            "chunked": ``text_chunk`` text tokens, then ``audio_chunk`` audio tokens, repeated; once the text is
            used up, audio continues alone (text stays ahead of the speech that says it, by more and more).
            "word": each word's text tokens right before the audio frame where the word starts (the samples'
            ``meta.answer_words``), so the latest text token is the word being said; the model itself decides
            when the next word's text comes.
            "ta4": Step-Audio-2's released layout (:func:`~a2llm.lalm.tokens.ta4_interleave`): one text token then
            ``audio_chunk`` audio tokens per chunk, ``<tts_pad>`` in the text slots once the text is used up,
            ``<audio_6561>`` in the audio slots when the text outlasts the speech. Every pad carries the loss
            (the released model writes them: the public servers strip them from its output) and none gets a
            motion frame. A Step-Audio-2 vocabulary always gets "ta4" (:func:`resolve_text_layout`).
        text_chunk, audio_chunk: the "chunked" pattern ("ta4": ``audio_chunk`` only).
        input_sample_rate: sample rate of input audio (the encoder's front end expects 16 kHz).
        task_weights: sampling weights when tasks are not given per sample.
        use_context: include earlier dialogue turns.
    """

    text_layout: str = "chunked"
    text_chunk: int = 1
    audio_chunk: int = 4
    input_sample_rate: int = 16000
    task_weights: tuple[tuple[str, float], ...] = (("aqaa", 0.4), ("tqa", 0.15), ("repeat", 0.15), ("tts", 0.15),
                                                   ("asr", 0.15))
    use_context: bool = True

    def __post_init__(self):
        if self.text_layout not in TEXT_LAYOUTS:
            raise ValueError(f"text_layout={self.text_layout!r}, choose from {TEXT_LAYOUTS}")


@dataclass
class Batch:
    """A collated batch. B samples, L tokens, N input-audio samples, F motion frames.

    Attributes:
        input_ids: [B, L] token ids, right-padded with ``layout.pad``.
        attention_mask: [B, L] 1 for real tokens.
        labels: [B, L] next-token targets (the model shifts), IGNORE outside the assistant's answer.
        input_audio: [B, N] float32 input speech at 16 kHz (zeros for text-only inputs).
        input_audio_lengths: [B] samples of real audio (0 for text-only inputs).
        audio_patch_mask: [B, L] True at <audio_patch> placeholders (filled with adaptor frames).
        motion: [B, F, 58] motion targets on the answer's timeline, zero-padded.
        motion_lengths: [B] frames (0 for ASR).
        audio_token_positions: [B, F] position in ``input_ids`` of the answer's k-th audio token, -1 pad.
        tasks: the subtask of each row.
        transcripts: [B, S] text token ids of what each row's input audio says (the question for AQAA / ASR,
            the answer for Repeat), IGNORE pad; the auxiliary CTC loss's targets (A2LLM.forward).
        transcript_lengths: [B] tokens per row (0: no input audio).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    input_audio: torch.Tensor
    input_audio_lengths: torch.Tensor
    audio_patch_mask: torch.Tensor
    motion: torch.Tensor
    motion_lengths: torch.Tensor
    audio_token_positions: torch.Tensor
    tasks: list[str] = field(default_factory=list)
    transcripts: torch.Tensor | None = None
    transcript_lengths: torch.Tensor | None = None

    def to(self, device) -> "Batch":
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Batch(**moved)


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    loss: list[bool] = field(default_factory=list)
    audio: np.ndarray | None = None
    motion: np.ndarray | None = None
    audio_positions: list[int] = field(default_factory=list)
    transcript: list[int] = field(default_factory=list)

    def add(self, ids, loss: bool = False) -> None:
        self.ids.extend(int(i) for i in ids)
        self.loss.extend([loss] * len(ids))


def resolve_text_layout(text_layout: str, layout: TokenLayout) -> str:
    """The text layout sequences over ``layout``'s vocabulary actually use: "ta4" for Step-Audio-2 (the only
    layout the released weights know; a requested "chunked", the configs' default, is its unpadded form),
    otherwise ``text_layout`` as given. Raises for "word" on Step-Audio-2 (nano's own layout)."""
    if text_layout not in TEXT_LAYOUTS:
        raise ValueError(f"text_layout={text_layout!r}, choose from {TEXT_LAYOUTS}")
    if is_step_audio2(layout):
        if text_layout == "word":
            raise ValueError("text_layout 'word' is nano's; a Step-Audio-2 vocabulary uses the released 'ta4' "
                             "layout (chunks of 1 text + 4 audio tokens)")
        return "ta4"
    return text_layout


class FlameQACollator:
    """Turn :class:`FlameQASample` s into a :class:`Batch` for one or several subtasks.

    Args:
        tokenizer: a Hugging Face tokenizer holding the special tokens (nano's or Step-Audio-2's).
        layout: its :class:`TokenLayout`.
        config: sequence-building options.
        seed: seeds the task sampling when tasks are not given.
    """

    def __init__(self, tokenizer, layout: TokenLayout, config: CollatorConfig = CollatorConfig(), seed: int = 0):
        self.tok, self.layout, self.config = tokenizer, layout, config
        self.text_layout = resolve_text_layout(config.text_layout, layout)
        self.rng = np.random.default_rng(seed)
        self._role = {r: self._text(f"{r}\n") for r in ("system", "human", "assistant")}

    def _text(self, s: str) -> list[int]:
        return self.tok.encode(s, add_special_tokens=False)

    def _turn(self, row: _Row, role: str, content: list[int], loss: bool = False) -> None:
        row.add([self.layout.bot] + self._role[role])
        row.add(content + [self.layout.eot], loss=loss)

    def _audio_input(self, row: _Row, audio: np.ndarray, sr: int, what: str, text: str) -> None:
        if sr != self.config.input_sample_rate:
            raise ValueError(f"{what}: audio at {sr} Hz, the encoder front end expects "
                             f"{self.config.input_sample_rate} Hz (resample when building the dataset)")
        row.audio = np.asarray(audio, np.float32)
        row.transcript = self._text(text) if text else []
        L = self.layout
        ids = [L.bot] + self._role["human"]
        for n in audio_patch_counts(len(audio)):          # one <audio_start>…<audio_end> per 25 s chunk
            ids += [L.audio_start] + [L.audio_patch] * n + [L.audio_end]
        row.add(ids + [L.eot])

    def _speech_answer(self, row: _Row, s: FlameQASample) -> None:
        if s.audio_tokens is None:
            raise ValueError(f"sample {s.id} has no audio_tokens: tokenize its response audio first")
        text = self._text(s.response_text)
        audio = list(self.layout.audio_id(np.asarray(s.audio_tokens, np.int64)))
        row.add([self.layout.bot] + self._role["assistant"])
        row.add([self.layout.tts_start], loss=True)
        if self.text_layout == "ta4":
            for t in ta4_interleave(text, audio, self.layout, self.config.audio_chunk):
                if self.layout.is_audio(t):           # pads are not speech: no motion frame
                    row.audio_positions.append(len(row.ids))
                row.add([t], loss=True)
            row.add([self.layout.tts_end, self.layout.eot], loss=True)
        else:
            if self.text_layout == "word":
                text, slots = self._word_slots(s)
            else:    # chunked: text token i goes before audio frame (i // text_chunk) * audio_chunk
                slots = [(i // self.config.text_chunk) * self.config.audio_chunk for i in range(len(text))]
            i = 0
            for j, code in enumerate(audio):
                k = i
                while k < len(text) and slots[k] <= j:
                    k += 1
                row.add(text[i:k], loss=True)
                i = k
                row.audio_positions.append(len(row.ids))
                row.add([code], loss=True)
            row.add(text[i:] + [self.layout.tts_end, self.layout.eot], loss=True)   # text longer than speech
        row.motion = np.asarray(s.motion, np.float32)
        if len(row.motion) != len(audio):
            raise ValueError(f"sample {s.id}: {len(row.motion)} motion frames for {len(audio)} audio tokens")

    def _word_slots(self, s: FlameQASample) -> tuple[list[int], list[int]]:
        """Layout "word": the answer's text tokens and the answer frame before which each goes — the first frame
        of the word the token belongs to (a token before the first word, e.g. an opening quote, goes with the
        first word; one after a word, e.g. its punctuation, with that word). Non-decreasing."""
        words = s.meta.get("answer_words")
        if not words:
            raise ValueError(f"sample {s.id} has no meta.answer_words (each word's characters and first frame): "
                             f"text_layout 'word' needs them; regenerate the corpus (python -m a2llm.data.nano)")
        text = s.response_text
        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        starts = [int(c0) for c0, _, _ in words]
        first = np.maximum.accumulate([int(f) for _, _, f in words])
        # A byte-level BPE piece carries the space before its word (" planned" spans from that space), so the
        # piece is placed by its first visible character: by its span start it would join the word before, and the
        # text would run one word ahead of the speech (the layout of every nano model until the ninth session).
        anchors = [a + len(text[a:b]) - len(text[a:b].lstrip()) for a, b in enc["offset_mapping"]]
        return list(enc["input_ids"]), [int(first[max(0, bisect.bisect_right(starts, a) - 1)]) for a in anchors]

    def build(self, s: FlameQASample, task: str, with_answer: bool = True) -> _Row:
        """One sample as one subtask's token row; without the answer it is the generation prompt (ending with
        ``<|BOT|>assistant\\n``, plus ``<tts_start>`` for speech tasks), and the sample needs no response."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
        row = _Row()
        self._turn(row, "system", self._text(SYSTEM_PROMPTS[task]))
        if self.config.use_context and task in ("aqaa", "tqa"):
            for t in s.context:
                self._turn(row, t.role, self._text(t.text))
        if task == "aqaa" or task == "asr":
            self._audio_input(row, s.question_audio, s.sample_rate, f"sample {s.id} question", s.question_text)
        elif task == "repeat":
            self._audio_input(row, s.response_audio, s.sample_rate, f"sample {s.id} response", s.response_text)
        elif task == "tqa":
            self._turn(row, "human", self._text(s.question_text))
        else:  # tts
            self._turn(row, "human", self._text(s.response_text))
        if not with_answer:
            row.add([self.layout.bot] + self._role["assistant"] + ([] if task == "asr" else [self.layout.tts_start]))
        elif task == "asr":
            self._turn(row, "assistant", self._text(s.question_text), loss=True)
        else:
            self._speech_answer(row, s)
        return row

    def sample_tasks(self, n: int) -> list[str]:
        names = [t for t, _ in self.config.task_weights]
        p = np.array([w for _, w in self.config.task_weights], float)
        return list(self.rng.choice(names, size=n, p=p / p.sum()))

    def __call__(self, samples: Sequence[FlameQASample], tasks: Sequence[str] | str | None = None,
                 with_answer: bool = True) -> Batch:
        if isinstance(tasks, str):
            tasks = [tasks] * len(samples)
        tasks = list(tasks) if tasks is not None else self.sample_tasks(len(samples))
        if len(tasks) != len(samples):
            raise ValueError(f"{len(tasks)} tasks for {len(samples)} samples")
        rows = [self.build(s, t, with_answer) for s, t in zip(samples, tasks)]
        B = len(rows)
        L = max(len(r.ids) for r in rows)
        N = max([len(r.audio) for r in rows if r.audio is not None] + [1])
        F = max([len(r.motion) for r in rows if r.motion is not None] + [1])
        ids = torch.full((B, L), self.layout.pad, dtype=torch.long)
        mask = torch.zeros(B, L, dtype=torch.long)
        labels = torch.full((B, L), IGNORE, dtype=torch.long)
        audio = torch.zeros(B, N)
        audio_len = torch.zeros(B, dtype=torch.long)
        motion = torch.zeros(B, F, 58)
        motion_len = torch.zeros(B, dtype=torch.long)
        positions = torch.full((B, F), -1, dtype=torch.long)
        transcripts = torch.full((B, max([len(r.transcript) for r in rows] + [1])), IGNORE, dtype=torch.long)
        transcript_len = torch.tensor([len(r.transcript) for r in rows], dtype=torch.long)
        for b, r in enumerate(rows):
            transcripts[b, :len(r.transcript)] = torch.tensor(r.transcript, dtype=torch.long)
            n = len(r.ids)
            ids[b, :n] = torch.tensor(r.ids)
            mask[b, :n] = 1
            loss = torch.tensor(r.loss)
            labels[b, :n][loss] = ids[b, :n][loss]
            if r.audio is not None:
                audio[b, :len(r.audio)] = torch.from_numpy(r.audio)
                audio_len[b] = len(r.audio)
            if r.motion is not None:
                motion[b, :len(r.motion)] = torch.from_numpy(r.motion)
                motion_len[b] = len(r.motion)
                positions[b, :len(r.audio_positions)] = torch.tensor(r.audio_positions)
        return Batch(ids, mask, labels, audio, audio_len, ids == self.layout.audio_patch, motion, motion_len,
                     positions, tasks, transcripts, transcript_len)
