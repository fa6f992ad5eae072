"""Step-Audio-2's Whisper-style audio encoder (25 Hz) and its adaptor into the LLM (12.5 Hz).

Attribute names follow the released checkpoint, so ``AudioEncoder.state_dict()`` keys are the released
names without the ``encoder.`` prefix (``blocks.{i}.attn.query.weight``, ``blocks.{i}.mlp.0.weight``,
``after_norm.bias`` ...) and ``AudioAdapter``'s without ``adapter.`` (``conv.weight``, ``linear1.weight``).

Frame counting (STEP_AUDIO2_FACTS.md, docs/STEP_AUDIO2.md): a chunk of T mel frames counts as T - 2 valid
frames (the public code treats the last two, made of the 479-sample zero padding, as padding), the encoder
keeps ``(T - 2 + 1) // 2 // 2`` of its frames and the adaptor ``(enc - 1) // 2 + 1`` (kernel 3, stride 2,
padding 1). Padding masks make every row of a batch give what it gives alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    """Audio encoder + adaptor sizes (``audio_encoder_config`` of the released config.json).

    Attributes:
        n_mels: mel bins of the input.
        n_audio_ctx: positional-embedding rows = most frames after the stride-2 conv (1500 = 30 s).
        n_audio_state: encoder width.
        n_audio_head: attention heads.
        n_audio_layer: transformer blocks.
        llm_dim: adaptor output width (= the LLM's hidden size).
        kernel_size: adaptor conv kernel.
        adapter_stride: adaptor conv stride.
        adapter_hidden: adaptor MLP width (fixed at 2048 in the released code; smaller for nano).
    """

    n_mels: int = 128
    n_audio_ctx: int = 1500
    n_audio_state: int = 1280
    n_audio_head: int = 20
    n_audio_layer: int = 32
    llm_dim: int = 3584
    kernel_size: int = 3
    adapter_stride: int = 2
    adapter_hidden: int = 2048

    def __post_init__(self):
        if self.n_audio_state % self.n_audio_head:
            raise ValueError(f"n_audio_state {self.n_audio_state} is not divisible by n_audio_head {self.n_audio_head}")
        if self.adapter_stride < 1 or self.kernel_size < 1:
            raise ValueError(f"adapter kernel_size and adapter_stride must be >= 1, "
                             f"got {self.kernel_size} and {self.adapter_stride}")


def encoder_frames(mel_frames: torch.Tensor | int) -> torch.Tensor | int:
    """Valid encoder output frames (25 Hz) of a chunk with ``mel_frames`` mel frames."""
    return (mel_frames - 2 + 1) // 2 // 2


def adapter_frames(enc_frames: torch.Tensor | int, config: EncoderConfig = EncoderConfig()) -> torch.Tensor | int:
    """Adaptor output frames (12.5 Hz) for ``enc_frames`` valid encoder frames (never negative)."""
    n = (enc_frames + 2 - config.kernel_size) // config.adapter_stride + 1
    return n.clamp(min=0) if isinstance(n, torch.Tensor) else max(0, n)


def num_output_frames(mel_frames: int, config: EncoderConfig = EncoderConfig()) -> int:
    """Adaptor frames (= <audio_patch> tokens) of one chunk with ``mel_frames`` mel frames."""
    return adapter_frames(encoder_frames(mel_frames), config)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's sinusoidal positions [length, channels]: the starting value of the (frozen) embedding."""
    half = channels // 2
    inv = torch.exp(-math.log(max_timescale) / (half - 1) * torch.arange(half))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class EncoderAttention(nn.Module):
    """Multi-head self-attention with Whisper's names (``query``, ``key`` (no bias), ``value``, ``out``)."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x: [B, T, D]; key_mask: [B, T] True for keys that may be attended to. Returns [B, T, D]."""
        B, T, D = x.shape
        q, k, v = (p(x).view(B, T, self.n_head, D // self.n_head).transpose(1, 2)
                   for p in (self.query, self.key, self.value))
        # Whisper scales q and k each by head_dim ** -0.25: the product is SDPA's default 1/sqrt(head_dim).
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: ``attn_ln`` -> ``attn``, ``mlp_ln`` -> ``mlp`` (Linear, GELU, Linear)."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = EncoderAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), key_mask)
        return x + self.mlp(self.mlp_ln(x))


def _time_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """[B, size] True before each row's length."""
    return torch.arange(size, device=lengths.device) < lengths[:, None]


class AudioEncoder(nn.Module):
    """Whisper-style encoder: log-mel [B, n_mels, T] -> [B, T_enc, n_audio_state] at 25 Hz.

    conv1 (k3, s1, p1) + GELU, conv2 (k3, s2, p1) + GELU, + stored positional embedding, pre-LN blocks,
    AvgPool1d(2, 2), ``after_norm``.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        c = config
        self.config = c
        self.conv1 = nn.Conv1d(c.n_mels, c.n_audio_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(c.n_audio_state, c.n_audio_state, kernel_size=3, stride=2, padding=1)
        self.positional_embedding = nn.Embedding(c.n_audio_ctx, c.n_audio_state)
        with torch.no_grad():
            if not self.positional_embedding.weight.is_meta:
                self.positional_embedding.weight.copy_(sinusoids(c.n_audio_ctx, c.n_audio_state))
        self.positional_embedding.requires_grad_(False)   # frozen in the released model
        self.blocks = nn.ModuleList(EncoderBlock(c.n_audio_state, c.n_audio_head) for _ in range(c.n_audio_layer))
        self.avg_pooler = nn.AvgPool1d(2, stride=2)
        self.after_norm = nn.LayerNorm(c.n_audio_state)

    def forward(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of log-mel chunks.

        Args:
            mel: [B, n_mels, T] log-mel (frames past a row's length are ignored).
            mel_lengths: [B] mel frames per row, as the front end returns them.

        Returns:
            x: [B, T_enc, n_audio_state], T_enc = ((T - 1) // 2 + 1) // 2; each row is zero past the frames it
                would have alone, so the adaptor's conv sees its zero padding there.
            lengths: [B] valid frames per row, :func:`encoder_frames`.
        """
        c = self.config
        if mel.dim() != 3 or mel.shape[1] != c.n_mels:
            raise ValueError(f"mel must be [B, {c.n_mels}, T], got shape {tuple(mel.shape)}")
        mel_lengths = torch.as_tensor(mel_lengths, device=mel.device).long()
        T = mel.shape[-1]
        x = F.gelu(self.conv1(mel.to(self.conv1.weight.dtype)))
        # A lone clip's conv2 reads zeros past its end, not conv1 responses to the batch's padding.
        x = F.gelu(self.conv2(x * _time_mask(mel_lengths, T)[:, None, :]))
        T2 = x.shape[-1]
        if T2 > c.n_audio_ctx:
            raise ValueError(f"{T} mel frames give {T2} encoder positions, more than n_audio_ctx={c.n_audio_ctx}: "
                             f"cut audio into chunks of at most 25 s (frontend.chunk_spans)")
        x = x.transpose(1, 2) + self.positional_embedding.weight[:T2]
        # Keys past (T - 2 + 1) // 2 are padding; at least one key stays open so no softmax row is empty
        # (such rows give no output frames anyway).
        key_mask = _time_mask(((mel_lengths - 2 + 1) // 2).clamp(min=1), T2)
        for block in self.blocks:
            x = block(x, key_mask)
        x = self.after_norm(self.avg_pooler(x.transpose(1, 2)).transpose(1, 2))
        computed = ((mel_lengths - 1) // 2 + 1) // 2       # frames a lone clip has (valid or not)
        x = x * _time_mask(computed, x.shape[1])[:, :, None].to(x.dtype)
        return x, encoder_frames(mel_lengths).clamp(min=0)


class AudioAdapter(nn.Module):
    """Adaptor: conv (kernel_size, adapter_stride, padding 1) + GELU, ``linear1``, ReLU, ``linear2`` -> llm_dim."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        c = config
        self.config = c
        self.conv = nn.Conv1d(c.n_audio_state, c.n_audio_state, c.kernel_size, c.adapter_stride, padding=1)
        self.linear1 = nn.Linear(c.n_audio_state, c.adapter_hidden)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(c.adapter_hidden, c.llm_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, T_enc, n_audio_state], lengths: [B] -> ([B, T_out, llm_dim], [B] valid output frames)."""
        x = F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return self.linear2(self.relu(self.linear1(x))), adapter_frames(lengths, self.config)
