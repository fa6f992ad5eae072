"""Whole-turn generation with an A²-LLM, batched: the path evaluation uses (the streaming engine is a2llm.engine).

    gen = Generator(model, text_tokenizer)
    answers = gen.answer(samples, task="aqaa")             # greedy; text, audio codes, motion per sample
    motion = gen.motion_for_reference(samples, "aqaa")     # motion on the reference answer's timeline

``answer`` prefills each prompt (everything up to and including ``<tts_start>``), then decodes greedily one
token per step for all rows at once until each row emits ``<|EOT|>``. The last-layer hidden state of every
fed audio token is kept: the Motion Connector turns those into motion tokens, the RVQ decoder into FLAME
parameters, exactly as in training (the state right after the token is fed).

``motion_for_reference`` feeds the *reference* answer (teacher forcing) instead, so the motion is on the
reference speech's timeline and can be compared frame by frame with the ground truth (tables 3, 4, 6).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from a2llm.data.collate import CollatorConfig, FlameQACollator
from a2llm.data.format import FlameQASample, Turn
from a2llm.lalm.tokens import TokenLayout


@dataclass
class Answer:
    """One generated turn: ``text`` (the answer's text tokens decoded), ``audio_codes`` [n] (25 Hz),
    ``motion`` [n, 58] (25 fps, same timeline), ``tokens`` (every generated id, in order)."""

    text: str
    audio_codes: np.ndarray
    motion: np.ndarray
    tokens: list[int]


def normalise_text(text: str) -> str:
    """Lower case, letters, digits and single spaces only: the form answer accuracy compares."""
    out = "".join(c.lower() if c.isalnum() else " " for c in text)
    return " ".join(out.split())


def layout_for(tokenizer) -> TokenLayout:
    """The token layout of a tokenizer: nano's names its audio codes ``<audio_k>``; otherwise Step-Audio-2's
    6,561 codes follow the text vocabulary."""
    num = sum(1 for t in tokenizer.get_vocab() if re.fullmatch(r"<audio_\d+>", t))
    return TokenLayout.from_tokenizer(tokenizer, num or 6561)


def text_layout_of(model) -> str:
    """The text layout a model was trained with (``A2LLMConfig.text_layout``; "chunked" for models without one)."""
    return getattr(getattr(model, "config", None), "text_layout", "chunked")


def prefers_text(logits: torch.Tensor, layout: TokenLayout) -> bool:
    """Word layout: would the model rather write than speak at this step? Compares probability mass — some
    non-audio token vs some audio code — not best logits: which word comes next is spread over the vocabulary
    even when writing is surely due (best-logit comparison placed text late: forced-text PER 125 % vs 87 %)."""
    a0, a1 = layout.audio_offset, layout.audio_offset + layout.num_audio_codes
    other = torch.cat([logits[:a0], logits[a1:]])
    return bool(torch.logsumexp(other, 0) > torch.logsumexp(logits[a0:a1], 0))


def best_text_token(logits: torch.Tensor, layout: TokenLayout) -> int:
    """The best non-audio token of [V] logits (a text piece or a special token such as ``<tts_end>``)."""
    other = logits.clone()
    other[layout.audio_offset:layout.audio_offset + layout.num_audio_codes] = float("-inf")
    return int(other.argmax())


def word_start_mask(tokenizer) -> torch.Tensor:
    """[len(tokenizer)] bool: the text tokens that begin a word — SentencePiece's "▁" (nano's BPE) or byte-level
    BPE's "Ġ" (Qwen's) in front of the piece."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return torch.tensor([bool(p) and p[0] in "\u2581\u0120" for p in pieces], dtype=torch.bool)


class WordPacing:
    """Forced text (:class:`TextSchedule`, word layout): a word's text token goes right before the word's first
    speech frame, so the next *word* of the given text is placed only once the current one has ``min_frames``
    frames of speech (pieces of the same word and punctuation may follow at once).

    Why: placed whenever the model would rather write than speak, a given text it had not memorised was sometimes
    written several words in a row and only the last spoken ("is planned for next" -> "next"): TTS PER on 160
    held-out-template answers 34.2 %, with this rule 22.3 % (ninth session). 95 % of the training layout's word
    starts keep it; the rest are words espeak-ng gave no word event of their own ("did not"), which share a frame —
    so :class:`TextSchedule` still places a held word at once when it is the model's own best text token (without
    that exception, PER on seen-template answers rose from 0.7 to 3.6 %).

    State: speech frames since the last word-start token (None before the first); :meth:`feed` every token.
    """

    def __init__(self, word_start: torch.Tensor, layout: TokenLayout, min_frames: int = 1):
        self.word_start, self.L, self.min_frames = word_start, layout, min_frames
        self.frames: int | None = None

    def may_start_word(self) -> bool:
        return self.frames is None or self.frames >= self.min_frames

    def starts_word(self, token: int) -> bool:
        return 0 <= token < len(self.word_start) and bool(self.word_start[token])

    def feed(self, token: int) -> None:
        if self.L.is_audio(token):
            self.frames = None if self.frames is None else self.frames + 1
        elif self.starts_word(token):
            self.frames = 0


def next_token(logits: torch.Tensor, layout: TokenLayout, text_layout: str = "chunked") -> int:
    """Greedy choice of one free-running step from [V] logits. "chunked": the argmax. "word": first speak or
    write (:func:`prefers_text`), then the best token of that kind. (No :class:`WordPacing` here: when the model
    writes freely it keeps its own words in step with its speech, and holding a word it wanted back a frame
    changed what it wrote next — AQAA 85.8 -> 51 %, ninth session.)"""
    if text_layout != "word":
        return int(logits.argmax())
    a0, a1 = layout.audio_offset, layout.audio_offset + layout.num_audio_codes
    if not prefers_text(logits, layout):
        return a0 + int(logits[a0:a1].argmax())
    return best_text_token(logits, layout)


class Generator:
    """Batched greedy generation and reference-timeline motion for one A²-LLM."""

    def __init__(self, model, text_tokenizer, layout: TokenLayout | None = None):
        self.model, self.tok = model.eval(), text_tokenizer
        self.layout = layout or layout_for(text_tokenizer)
        self.text_layout = text_layout_of(model)
        self.collate = FlameQACollator(text_tokenizer, self.layout, CollatorConfig(text_layout=self.text_layout))
        self.word_start = word_start_mask(text_tokenizer)
        if model.motion_tokenizer is None:
            raise ValueError("this model has no motion tokenizer (rvq part): it cannot produce motion")

    # ------------------------------------------------------------------------------------------ motion
    def _motion_from_hidden(self, hidden: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
        """hidden [B, T, d] at audio-token steps -> B motions [T_b, 58] through connector + RVQ decoder."""
        codes = self.model.connector.generate(hidden, lengths).tokens
        G = self.model.connector.cfg.group
        out = []
        for b, T in enumerate(lengths.tolist()):
            if T == 0:
                out.append(np.zeros((0, 58), np.float32))
                continue
            out.append(self.model.motion_tokenizer.decode(codes[b, :-(-T // G)].cpu().numpy())[:T])
        return out

    @torch.no_grad()
    def motion_for_reference(self, samples: Sequence[FlameQASample], task: str = "aqaa") -> list[np.ndarray]:
        """Motion for each sample's *reference* answer (fed as if generated): [T, 58] each, T = its frames."""
        batch = self.collate(list(samples), task)
        out = self.model.backbone(batch.input_ids, batch.attention_mask, batch.input_audio,
                                  batch.input_audio_lengths, batch.audio_patch_mask)
        pos = batch.audio_token_positions.clamp(min=0)
        hidden = torch.gather(out.hidden, 1, pos[..., None].expand(-1, -1, out.hidden.shape[-1]))
        return self._motion_from_hidden(hidden, batch.motion_lengths)

    # ------------------------------------------------------------------------------------------ decoding
    def _prompts(self, samples: Sequence[FlameQASample], task: str):
        """The prompt batch (through <tts_start> for speech tasks); the samples' answers are not read."""
        batch = self.collate(list(samples), task, with_answer=False)
        return batch.input_ids, batch.attention_mask, batch, batch.audio_patch_mask

    @torch.no_grad()
    def answer(self, samples: Sequence[FlameQASample], task: str = "aqaa", max_new_tokens: int = 400,
               with_motion: bool = True, force_text: Sequence[Sequence[int]] | None = None) -> list[Answer]:
        """Greedy answers for a batch of samples (their reference answers are not used).

        ``force_text`` (text-to-speech with a given text): each row's answer text token ids, placed as the
        model's training layout places them (:class:`TextSchedule`) while the model generates every audio
        token; audio steps only admit audio codes, and ``<tts_end>`` once the text is used up.
        """
        L = self.layout
        sched = [TextSchedule(list(t), L, text_layout=self.text_layout, pacing=WordPacing(self.word_start, L))
                 for t in force_text] if force_text is not None else None
        ids, mask, batch, patch = self._prompts(samples, task)
        logits, _, state = self.model.backbone.prefill(ids, mask, batch.input_audio, batch.input_audio_lengths, patch)
        B = len(samples)
        generated: list[list[int]] = [[] for _ in range(B)]
        audio_hidden: list[list[torch.Tensor]] = [[] for _ in range(B)]
        done = torch.zeros(B, dtype=torch.bool)
        for _ in range(max_new_tokens):
            if sched is None:
                nxt = torch.tensor([next_token(logits[b], L, self.text_layout) for b in range(B)])
            else:
                nxt = torch.tensor([sc.choose(logits[b]) for b, sc in enumerate(sched)])
            nxt = torch.where(done, torch.full_like(nxt, L.pad), nxt)
            for b in range(B):
                if not done[b]:
                    generated[b].append(int(nxt[b]))
            done |= nxt == L.eot
            if bool(done.all()):
                break
            logits, hidden, state = self.model.backbone.step(nxt[:, None], state)
            is_audio = L.is_audio(nxt) & ~done
            for b in is_audio.nonzero().flatten().tolist():
                audio_hidden[b].append(hidden[b])
        answers = []
        lengths = torch.tensor([len(h) for h in audio_hidden])
        motions = [np.zeros((0, 58), np.float32)] * B
        if with_motion and int(lengths.max()) > 0:
            H = torch.zeros(B, int(lengths.max()), hidden.shape[-1])
            for b, h in enumerate(audio_hidden):
                if h:
                    H[b, :len(h)] = torch.stack(h)
            motions = self._motion_from_hidden(H, lengths)
        for b in range(B):
            toks = generated[b]
            codes = np.array([t - L.audio_offset for t in toks if L.is_audio(t)], np.int64)
            text = self.tok.decode(L.text_ids(toks), skip_special_tokens=True).strip()
            answers.append(Answer(text, codes, motions[b], toks))
        return answers


class TextSchedule:
    """Where the known text of a spoken answer goes (one row of forced-text decoding), as the model was trained:

    * "chunked": one text token, then ``audio_chunk`` audio tokens, ...;
    * "word": the model decides — whenever it would rather write text than speech (its probability of some
      non-audio token beats that of some audio code), the next text token is placed.

    Audio alone once the text is used up, then ``<tts_end>`` when the model prefers it to every audio code.
    """

    def __init__(self, text: list[int], layout: TokenLayout, audio_chunk: int = 4, text_layout: str = "chunked",
                 pacing: WordPacing | None = None):
        self.text, self.L, self.chunk, self.mode = text, layout, audio_chunk, text_layout
        self.pacing = pacing         # word layout: a new word only after the current one's first frame
        self.i = 0                   # text tokens placed
        self.k = audio_chunk         # audio tokens since the last text token (start: a text slot is due)
        self.closing = False

    def _text_due(self, logits: torch.Tensor) -> bool:
        if self.i >= len(self.text):
            return False
        if self.mode == "word":
            if self.i == 0:
                return True
            if not prefers_text(logits, self.L):
                return False
            nxt = self.text[self.i]
            if self.pacing is not None and self.pacing.starts_word(nxt) and not self.pacing.may_start_word():
                return best_text_token(logits, self.L) == nxt   # early only if the model wants just this word
            return True
        return self.k >= self.chunk

    def choose(self, logits: torch.Tensor) -> int:
        token = self._choose(logits)
        if self.pacing is not None:
            self.pacing.feed(token)
        return token

    def _choose(self, logits: torch.Tensor) -> int:
        L = self.L
        if self.closing:
            return L.eot
        audio = logits[L.audio_offset:L.audio_offset + L.num_audio_codes]
        if self._text_due(logits):
            self.i, self.k = self.i + 1, 0
            return self.text[self.i - 1]
        best = int(audio.argmax())
        if self.i >= len(self.text) and logits[L.tts_end] > audio[best]:
            self.closing = True
            return L.tts_end
        self.k += 1
        return L.audio_offset + best


# Every spoken question nano trained on has 0.1-0.3 s of silence before and after the speech (FLAME-QA-nano's
# generator); a clip cut right at the speech (a VAD segment, a bare espeak-ng clip) is answered badly without
# that margin (eighth session: "Did you enjoy the party?" in a held-out voice -> "Dified doorn."; with 0.2 s on
# each side -> the right answer). So user clips get the margin before they reach the model.
QUESTION_MARGIN_S = 0.2


def pad_question(audio: np.ndarray, sample_rate: int, margin_s: float = QUESTION_MARGIN_S) -> np.ndarray:
    """``audio`` [N] with ``margin_s`` seconds of silence added before and after -> [N + 2 margin] float32."""
    pad = np.zeros(int(round(margin_s * sample_rate)), np.float32)
    return np.concatenate([pad, np.asarray(audio, np.float32), pad])


def question(text: str | None = None, audio: np.ndarray | None = None, sample_rate: int = 16000,
             context: Sequence[tuple[str, str]] = (),
             margin_s: float = QUESTION_MARGIN_S) -> tuple[FlameQASample, str]:
    """A user turn as a sample the generator takes, and its task: spoken (``audio``, 16 kHz; ``margin_s`` of
    silence added around it, :func:`pad_question`) -> "aqaa", typed (``text``) -> "tqa". ``context``: earlier
    (role, text) turns, role "human" or "assistant"."""
    if (text is None) == (audio is None):
        raise ValueError("give either the typed question (text) or the spoken one (audio), not both")
    empty = np.zeros(0, np.float32)
    q_audio = empty if audio is None else pad_question(audio, sample_rate, margin_s)
    s = FlameQASample(id="turn", question_text=text or "", question_audio=q_audio, response_text="",
                      response_audio=empty, sample_rate=sample_rate, motion=np.zeros((0, 58), np.float32),
                      emotion="neutral", context=[Turn(r, t) for r, t in context])
    return s, ("aqaa" if audio is not None else "tqa")
