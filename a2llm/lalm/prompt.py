"""Prompts for inference in the Step-Audio-2 chat format, built the way the training collator builds them.

A dialogue is a list of :class:`Message` s (roles system / human / assistant; content made of text, audio
and raw token ids). Each becomes ``<|BOT|>role\\n{content}<|EOT|>``; an audio clip becomes, for each of its
25 s chunks, ``<audio_start><audio_patch>×n<audio_end>`` (n from ``tokens.audio_patch_counts``), the
patches to be filled by the adaptor's frames. The reply is opened, not closed: ``<|BOT|>assistant\\n<tts_start>``
for a spoken reply, ``<|BOT|>assistant\\n`` for a text reply. As in ``a2llm.data.collate``, the role is
tokenized as ``"role\\n"`` on its own and each text piece on its own.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from a2llm.lalm.frontend import FrontendConfig
from a2llm.lalm.tokens import ROLES, TokenLayout, audio_patch_counts

REPLIES = ("speech", "text", None)


@dataclass(frozen=True)
class Audio:
    """An audio clip: samples [N] float32 mono at ``sample_rate`` Hz (the encoder takes 16 kHz)."""

    samples: np.ndarray
    sample_rate: int = 16000


@dataclass(frozen=True)
class Tokens:
    """Raw token ids placed as they are (e.g. an earlier spoken reply: text and audio tokens)."""

    ids: Sequence[int]


Part = str | Audio | Tokens


@dataclass(frozen=True)
class Message:
    """One dialogue turn. ``role`` is system / human / assistant ("user" is read as human)."""

    role: str
    content: Part | Sequence[Part]

    def parts(self) -> list[Part]:
        return [self.content] if isinstance(self.content, (str, Audio, Tokens)) else list(self.content)


@dataclass
class Prompt:
    """One tokenized prompt.

    Attributes:
        input_ids: [L] token ids.
        audio_patch_mask: [L] True at <audio_patch> placeholders.
        audios: the clips in prompt order, float32 at 16 kHz.
    """

    input_ids: torch.Tensor
    audio_patch_mask: torch.Tensor
    audios: list[np.ndarray] = field(default_factory=list)


@dataclass
class PromptBatch:
    """Prompts padded into one batch (the inputs of ``StepAudio2Backbone.prefill``).

    Attributes:
        input_ids: [B, L] padded with ``layout.pad``.
        attention_mask: [B, L] 1 for real tokens.
        input_audio: [B, K, N] each row's clips (K = most clips in a row, at least 1), zero-padded.
        input_audio_lengths: [B, K] samples per clip (0 where a row has fewer clips).
        audio_patch_mask: [B, L] True at <audio_patch> placeholders.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    input_audio: torch.Tensor
    input_audio_lengths: torch.Tensor
    audio_patch_mask: torch.Tensor

    def as_kwargs(self) -> dict[str, torch.Tensor]:
        return dict(self.__dict__)


class PromptBuilder:
    """Tokenize dialogues into prompts.

    Args:
        tokenizer: a Hugging Face tokenizer holding the special tokens (nano's or Step-Audio-2's).
        layout: its :class:`TokenLayout`.
        frontend: front-end constants (the sample rate the encoder takes).
    """

    def __init__(self, tokenizer, layout: TokenLayout, frontend: FrontendConfig = FrontendConfig()):
        self.tok, self.layout, self.frontend = tokenizer, layout, frontend
        self._role = {r: self._text(f"{r}\n") for r in ROLES}

    def _text(self, s: str) -> list[int]:
        return self.tok.encode(s, add_special_tokens=False)

    def _audio(self, clip: Audio, where: str) -> tuple[list[int], np.ndarray]:
        if clip.sample_rate != self.frontend.sample_rate:
            raise ValueError(f"{where}: audio at {clip.sample_rate} Hz, the encoder front end expects "
                             f"{self.frontend.sample_rate} Hz (resample first)")
        samples = np.asarray(clip.samples, np.float32)
        if samples.ndim != 1 or len(samples) == 0:
            raise ValueError(f"{where}: audio must be a non-empty 1-D array, got shape {samples.shape}")
        L = self.layout
        ids: list[int] = []
        for n in audio_patch_counts(len(samples)):       # one block per 25 s chunk, as the collator does
            ids += [L.audio_start] + [L.audio_patch] * n + [L.audio_end]
        return ids, samples

    def build(self, messages: Sequence[Message], reply: str | None = "speech") -> Prompt:
        """Tokenize a dialogue and open the assistant's reply.

        Args:
            messages: the turns, oldest first.
            reply: "speech" (prefill ``<tts_start>``), "text" (plain assistant turn) or None (no open turn).
        """
        if reply not in REPLIES:
            raise ValueError(f"reply must be one of {REPLIES}, got {reply!r}")
        L = self.layout
        ids: list[int] = []
        audios: list[np.ndarray] = []
        for i, m in enumerate(messages):
            role = "human" if m.role == "user" else m.role
            if role not in ROLES:
                raise ValueError(f"message {i}: role {m.role!r} is not one of {ROLES}")
            ids += [L.bot] + self._role[role]
            for part in m.parts():
                if isinstance(part, str):
                    ids += self._text(part)
                elif isinstance(part, Audio):
                    audio_ids, samples = self._audio(part, f"message {i}")
                    ids += audio_ids
                    audios.append(samples)
                elif isinstance(part, Tokens):
                    ids += [int(t) for t in part.ids]
                else:
                    raise TypeError(f"message {i}: content parts are str, Audio or Tokens, got {type(part).__name__}")
            ids.append(L.eot)
        if reply is not None:
            ids += [L.bot] + self._role["assistant"] + ([L.tts_start] if reply == "speech" else [])
        input_ids = torch.tensor(ids, dtype=torch.long)
        return Prompt(input_ids, input_ids == L.audio_patch, audios)

    def collate(self, prompts: Sequence[Prompt], padding_side: str = "left") -> PromptBatch:
        """Pad prompts into a batch; left padding puts every row's last token at the end."""
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if not prompts:
            raise ValueError("no prompts to collate")
        B, L = len(prompts), max(len(p.input_ids) for p in prompts)
        K = max([len(p.audios) for p in prompts] + [1])
        N = max([len(a) for p in prompts for a in p.audios] + [1])
        ids = torch.full((B, L), self.layout.pad, dtype=torch.long)
        mask = torch.zeros(B, L, dtype=torch.long)
        audio = torch.zeros(B, K, N)
        lengths = torch.zeros(B, K, dtype=torch.long)
        for b, p in enumerate(prompts):
            n = len(p.input_ids)
            span = slice(L - n, L) if padding_side == "left" else slice(0, n)
            ids[b, span], mask[b, span] = p.input_ids, 1
            for k, a in enumerate(p.audios):
                audio[b, k, :len(a)] = torch.from_numpy(a)
                lengths[b, k] = len(a)
        return PromptBatch(ids, mask, audio, lengths, ids == self.layout.audio_patch)
