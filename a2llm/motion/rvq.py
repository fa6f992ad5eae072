"""Residual motion tokenizer: the seed's RVQ-VAE (§5.1, appendix B).

    motion [B, T, 58] (25 fps) --encoder--> latent [B, T/5, 256] (5 Hz) --ResidualVQ (6 x 256)--> indices
    indices [B, T/5, 6] --codebooks--> latent --causal decoder--> motion [B, T, 58]

The encoder sees the whole clip (it only runs on ground truth during training and data preparation).
The decoder is causal at token granularity: each token is expanded to its own five frames, then causal
convolutions look only backwards, so frame t depends on tokens up to the one that holds t. That lets
:class:`StreamingDecoder` decode segment by segment as the connector emits tokens, with a short history
of past tokens, and match the full decode.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from loguru import logger
from vector_quantize_pytorch import ResidualVQ

# vector-quantize-pytorch logs a warning per codebook whenever k-means init sees few vectors.
logger.disable("vector_quantize_pytorch")

from a2llm.motion.layout import MOTION_DIM


@dataclass(frozen=True)
class RVQConfig:
    """RVQ-VAE hyper-parameters (defaults: the seed's appendix B)."""

    motion_dim: int = MOTION_DIM
    width: int = 128               # base width of encoder and decoder
    num_res_blocks: int = 3
    dilations: tuple[int, ...] = (1, 3, 9)
    latent_dim: int = 256
    group: int = 5                 # frames per token: 25 fps -> 5 Hz
    num_quantizers: int = 6
    codebook_size: int = 256
    dropout: float = 0.05
    commitment: float = 0.25       # gamma
    lambda_vq: float = 1.0
    ema_decay: float = 0.99
    dead_code_threshold: float = 2.0
    head: str = "open"             # the head model the tokenizer was trained for
    # How the decoder goes from 5 Hz tokens to 25 fps frames. "transpose": a stride-G transposed convolution (each
    # token's G frames from its own latent alone: a pattern that repeats every G frames, steps at token joins);
    # "repeat": hold each latent for G frames, then a causal G-tap convolution that blends a token's frames with the
    # previous token's (the usual cure for strided-upsampling artefacts; still causal, so streaming is unchanged);
    # "lerp": glide from the previous token's latent to this one's over the G frames (frame j of token t at
    # z[t-1] + (j+1)/G (z[t] − z[t-1])), then the same convolution: no step in the latent at all, still causal (the
    # previous token is history) — the upper face's remaining twitch was the hold's steps (docs/TOKENIZER.md).
    upsample: str = "transpose"

    @property
    def decoder_context_tokens(self) -> int:
        """Past tokens the causal decoder can see: its receptive field, rounded up to whole tokens."""
        frames = sum(2 * d for d in self.dilations[: self.num_res_blocks]) + 2
        frames += self.group - 1 if self.upsample in ("repeat", "lerp") else 0
        frames += self.group if self.upsample == "lerp" else 0            # the previous token's latent
        return -(-frames // self.group) + 1


class _ResBlock(nn.Module):
    """Dilated conv -> ReLU -> 1x1 conv, residual; ``causal`` pads on the left only."""

    def __init__(self, width: int, dilation: int, dropout: float, causal: bool):
        super().__init__()
        self.causal, self.pad = causal, 2 * dilation if causal else dilation
        self.conv = nn.Conv1d(width, width, 3, dilation=dilation)
        self.proj = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, W, T] -> [B, W, T]."""
        h = F.pad(x, (self.pad, 0) if self.causal else (self.pad, self.pad), mode="replicate")
        return x + self.drop(self.proj(F.relu(self.conv(F.relu(h)))))


class MotionEncoder(nn.Module):
    def __init__(self, cfg: RVQConfig):
        super().__init__()
        self.inp = nn.Conv1d(cfg.motion_dim, cfg.width, 3, padding=1, padding_mode="replicate")
        self.blocks = nn.Sequential(*[_ResBlock(cfg.width, d, cfg.dropout, causal=False)
                                      for d in cfg.dilations[: cfg.num_res_blocks]])
        self.down = nn.Conv1d(cfg.width, cfg.latent_dim, cfg.group, stride=cfg.group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] normalised motion (T a multiple of group) -> [B, T/group, latent]."""
        return self.down(self.blocks(self.inp(x.transpose(1, 2)))).transpose(1, 2)


class _RepeatUp(nn.Module):
    """[B, latent, N] -> [B, width, N*G]: each latent held for G frames ("repeat") or glided to from the previous
    token's ("lerp"), then a causal G-tap convolution."""

    def __init__(self, cfg: RVQConfig):
        super().__init__()
        self.group, self.lerp = cfg.group, cfg.upsample == "lerp"
        self.conv = nn.Conv1d(cfg.latent_dim, cfg.width, cfg.group)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z.repeat_interleave(self.group, dim=2)
        if self.lerp:
            prev = torch.cat([z[:, :, :1], z[:, :, :-1]], 2).repeat_interleave(self.group, dim=2)
            w = torch.arange(1, self.group + 1, dtype=z.dtype, device=z.device).repeat(z.shape[2]) / self.group
            h = prev + w * (h - prev)
        return self.conv(F.pad(h, (self.group - 1, 0), mode="replicate"))


class MotionDecoder(nn.Module):
    def __init__(self, cfg: RVQConfig):
        super().__init__()
        if cfg.upsample not in ("transpose", "repeat", "lerp"):
            raise ValueError(f"RVQConfig.upsample must be 'transpose', 'repeat' or 'lerp', got {cfg.upsample!r}")
        self.up = (nn.ConvTranspose1d(cfg.latent_dim, cfg.width, cfg.group, stride=cfg.group)
                   if cfg.upsample == "transpose" else _RepeatUp(cfg))
        self.blocks = nn.Sequential(*[_ResBlock(cfg.width, d, cfg.dropout, causal=True)
                                      for d in cfg.dilations[: cfg.num_res_blocks]])
        self.out = nn.Conv1d(cfg.width, cfg.motion_dim, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, N, latent] -> [B, N*group, D] normalised motion (causal in N)."""
        h = self.blocks(self.up(z.transpose(1, 2)))
        return self.out(F.pad(F.relu(h), (2, 0), mode="replicate")).transpose(1, 2)


@dataclass
class RVQOutput:
    """recon [B, T, D] (motion units), indices [B, T/group, Nq], commit_loss (scalar, weighted)."""

    recon: torch.Tensor
    indices: torch.Tensor
    commit_loss: torch.Tensor


class MotionRVQVAE(nn.Module):
    """The RVQ-VAE. Inputs and outputs are in motion units; normalisation statistics are buffers."""

    def __init__(self, cfg: RVQConfig = RVQConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = MotionEncoder(cfg)
        self.decoder = MotionDecoder(cfg)
        self.quantizer = ResidualVQ(dim=cfg.latent_dim, num_quantizers=cfg.num_quantizers,
                                    codebook_size=cfg.codebook_size, commitment_weight=cfg.commitment,
                                    decay=cfg.ema_decay, kmeans_init=True, kmeans_iters=10,
                                    threshold_ema_dead_code=cfg.dead_code_threshold)
        self.register_buffer("mean", torch.zeros(cfg.motion_dim))
        self.register_buffer("std", torch.ones(cfg.motion_dim))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-4))

    def _pad(self, motion: torch.Tensor) -> torch.Tensor:
        """Repeat the last frame up to a multiple of ``group`` frames."""
        extra = (-motion.shape[1]) % self.cfg.group
        return torch.cat([motion, motion[:, -1:].expand(-1, extra, -1)], 1) if extra else motion

    def forward(self, motion: torch.Tensor) -> RVQOutput:
        """Training pass: [B, T, D] -> reconstruction [B, T, D] (T a multiple of group)."""
        z = self.encoder((motion - self.mean) / self.std)
        q, indices, commit = self.quantizer(z)
        recon = self.decoder(q) * self.std + self.mean
        return RVQOutput(recon, indices, self.cfg.lambda_vq * commit.sum())

    @torch.no_grad()
    def encode(self, motion: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, ceil(T/group), Nq] int64 (the last frame is repeated to fill a token)."""
        z = self.encoder((self._pad(motion) - self.mean) / self.std)
        _, indices, _ = self.quantizer(z)
        return indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """[B, N, Nq] -> [B, N*group, D] motion."""
        return self.decode_latent(self.quantizer.get_output_from_indices(indices))

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Quantized latents [B, N, latent] -> [B, N*group, D] motion."""
        return self.decoder(z) * self.std + self.mean

    def expected_latent(self, logits: torch.Tensor) -> torch.Tensor:
        """The latent a code predictor expects: logits [..., Nq, K] over each level's codes -> [..., latent],
        Σ_level Σ_k softmax(logits)_k · codebook_level[k] (each level's own distribution; with one-hot
        predictions, exactly ``get_output_from_indices`` of their codes). Where the predictor hesitates between
        codes, the latent moves part of the way instead of jumping to one: what made the connector's upper face
        twitch (docs/TOKENIZER.md, "Expected codes")."""
        probs = logits.float().softmax(-1)                                      # [..., Nq, K]
        books = self.quantizer.codebooks.to(probs.dtype)                       # [Nq, K, latent]
        return torch.einsum("...lk,lkd->...d", probs, books)


class StreamingDecoder:
    """Decode tokens segment by segment, with the causal decoder's history kept between calls.

    The state is the last ``cfg.decoder_context_tokens`` tokens; each call decodes history + new tokens
    and returns only the new tokens' frames, which equal the full decode's frames (the decoder is causal
    and the history covers its receptive field). No lookahead: a segment never waits for later ones.
    """

    def __init__(self, model: MotionRVQVAE):
        self.model = model
        self.context = model.cfg.decoder_context_tokens
        self.reset()

    def reset(self) -> None:
        self.history = torch.zeros(0, self.model.cfg.latent_dim)          # the last tokens' quantized latents

    @torch.no_grad()
    def step(self, indices: torch.Tensor) -> torch.Tensor:
        """New tokens [n, Nq] -> their frames [n * group, D]."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1, self.model.cfg.num_quantizers)
        if len(indices) == 0:
            return torch.zeros(0, self.model.cfg.motion_dim)
        return self.step_latent(self.model.quantizer.get_output_from_indices(indices[None])[0])

    @torch.no_grad()
    def step_latent(self, z: torch.Tensor) -> torch.Tensor:
        """New tokens' latents [n, latent] (codes looked up, or :meth:`MotionRVQVAE.expected_latent`) -> their
        frames [n * group, D]."""
        z = torch.as_tensor(z, dtype=self.history.dtype).reshape(-1, self.model.cfg.latent_dim)
        if len(z) == 0:
            return torch.zeros(0, self.model.cfg.motion_dim)
        seq = torch.cat([self.history, z.to(self.history.device)], 0)
        frames = self.model.decode_latent(seq[None])[0]
        self.history = seq[-self.context:]
        return frames[-len(z) * self.model.cfg.group:]
