"""Motion Connector: LLM hidden states at the answer's audio-token steps -> RVQ motion tokens (seed §5.2, app. B).

    hidden H [B, T, d] (25 Hz)
      --LayerNorm(d), Conv1d(d, d, G=5, stride 5), Linear(d, 768)-->   H' [B, N, 768]   (5 Hz, N = ceil(T / 5))
      --6 pre-norm decoder layers: self-attention over H', cross-attention to the embedded motion tokens of
        earlier segments, FFN 3072-->                                   [B, N, 768]
      --6 heads (one per RVQ level)-->                                  logits [B, N, 6, 256]

    loss (Eq. 5) = sum over the 6 levels of cross-entropy, each a mean over the valid tokens.

    connector = MotionConnector(ConnectorConfig.full())               # d = 3584 (Step-Audio-2-mini)
    out = connector(hidden, motion_tokens, lengths)                    # training: logits, loss
    gen = connector.generate(hidden, lengths)                          # whole turn through the streaming path
    with connector.streaming(batch_size=1) as stream:                  # the engine, segment by segment
        tokens = stream.step(h_segment)                                # [1, S*5, d] -> [1, S, 6]

Design (settled here; the engine relies on it):

* **Segment** = ``segment_tokens`` (S) consecutive motion tokens = S*5 hidden frames (S = 1: 0.2 s). The engine
  trades time-to-first-animation against quality through S; training and inference use the same S.
* **Window** W = ``history_tokens`` (default 16 tokens = 3.2 s). Queries of segment k (tokens [kS, kS+S))
  - self-attend to H' of tokens [kS - W, kS + S): causal across segments, full attention inside the segment;
  - cross-attend to the embedded motion tokens [kS - W, kS) — only earlier segments. In training these are the
    ground truth (teacher forcing), at inference the connector's own predictions. Memory slots before the turn
    start hold a learned "start" vector, so the memory is always W slots (never an empty softmax).
  Both paths therefore see exactly the same information; generation is segment-wise autoregressive.
* **Memory embedding**: one embedding table per RVQ level, summed, plus a learned slot embedding (slot s of W
  is the token W - s steps before the segment start: relative age, not absolute time), then LayerNorm.
* **Positions in self-attention**: rotary embeddings on token index. Attention only spans the window, so the
  model only ever sees relative offsets below W + S: turns of any length behave like the training ones.
* **Streaming state** (:class:`ConnectorState`): per layer the rotary keys/values of the last W tokens (the
  "past H' features within the window" — cached per layer, as each layer's keys depend on the layer below),
  their validity, and the last W predicted tokens (history buffer). With these, :meth:`MotionConnector.generate`
  equals a training forward fed its own predictions (tests/test_connector.py).
* **Frames not a multiple of 5 / padding**: the remainder is *padded*, like :class:`a2llm.motion.MotionTokenizer`,
  which encodes ceil(T/5) tokens by repeating the last frame: every frame at or after a sample's length is
  replaced by its last valid frame, so a sample of L frames has ceil(L/5) tokens and what lies in its padding
  never matters. Tokens at or beyond a sample's token length are masked out of the loss and, as attention keys,
  out of every valid token's view (batch composition does not change a sample's logits).
* The input LayerNorm is there because LLM hidden states carry a few huge outlier channels (Qwen2-class models).

Parameters: ``ConnectorConfig.full()`` (d = 3584) has 126,076,928, the conv alone 64,228,864 (seed: ≈ 0.12B).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from a2llm.checkpoint import load_component, save_component

PART = "connector"
PAD_TOKEN = -1            # generate() marks tokens beyond a sample's length with this
_ROPE_BASE = 10000.0


@dataclass(frozen=True)
class ConnectorConfig:
    """Connector hyper-parameters (defaults: the seed's appendix B).

    Attributes:
        d_llm: hidden size of the LLM whose states are read (3584 for Step-Audio-2-mini).
        group: hidden frames per motion token (G; 25 Hz -> 5 Hz).
        hidden, layers, heads, ffn, dropout: the transformer decoder.
        num_quantizers, codebook_size: RVQ levels and codes per level of the motion tokenizer.
        segment_tokens: S, motion tokens per streaming segment.
        history_tokens: W, the attention window in tokens (self-attention and motion-token memory).
    """

    d_llm: int
    group: int = 5
    hidden: int = 768
    layers: int = 6
    heads: int = 12
    ffn: int = 3072
    dropout: float = 0.1
    num_quantizers: int = 6
    codebook_size: int = 256
    segment_tokens: int = 1
    history_tokens: int = 16

    def __post_init__(self) -> None:
        positive = ("d_llm", "group", "hidden", "layers", "heads", "ffn", "num_quantizers", "codebook_size",
                    "segment_tokens", "history_tokens")
        bad = [f"{name}={getattr(self, name)}" for name in positive
               if not isinstance(getattr(self, name), int) or getattr(self, name) < 1]
        if bad:
            raise ValueError(f"ConnectorConfig: {', '.join(bad)} (expected positive integers)")
        if self.hidden % self.heads or (self.hidden // self.heads) % 2:
            raise ValueError(f"ConnectorConfig: hidden={self.hidden} must split into heads={self.heads} "
                             "heads of even size (rotary embeddings rotate pairs of channels)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ConnectorConfig: dropout={self.dropout} (expected 0 <= dropout < 1)")

    @classmethod
    def full(cls, d_llm: int = 3584, **overrides: Any) -> "ConnectorConfig":
        """The seed's connector (≈ 0.12B parameters for d_llm = 3584)."""
        return cls(d_llm=d_llm, **overrides)

    @classmethod
    def nano(cls, d_llm: int, **overrides: Any) -> "ConnectorConfig":
        """A²-LLM-nano's connector: the same design at hidden 128, 2 layers, 4 heads, FFN 256."""
        return replace(cls(d_llm=d_llm, hidden=128, layers=2, heads=4, ffn=256), **overrides)

    @property
    def segment_frames(self) -> int:
        """Hidden frames per segment (S * G)."""
        return self.segment_tokens * self.group


@dataclass
class ConnectorOutput:
    """Training output.

    Attributes:
        logits: [B, N, Nq, K], N = ceil(T / G).
        loss: scalar, Eq. 5 (sum over levels of the mean cross-entropy over valid tokens; 0 if none is valid).
        level_losses: [Nq] the per-level terms of ``loss`` (for logging).
        token_lengths: [B] valid tokens per sample, ceil(lengths / G).
    """

    logits: torch.Tensor
    loss: torch.Tensor
    level_losses: torch.Tensor
    token_lengths: torch.Tensor


@dataclass
class StepOutput:
    """One streaming segment: tokens [B, n, Nq] int64 and their logits [B, n, Nq, K], n <= S."""

    tokens: torch.Tensor
    logits: torch.Tensor


@dataclass
class GenerateOutput:
    """A whole sequence generated segment by segment.

    Attributes:
        tokens: [B, N, Nq] int64; positions at or beyond ``token_lengths`` hold :data:`PAD_TOKEN`.
        logits: [B, N, Nq, K] the logits each token was chosen from.
        token_lengths: [B] valid tokens per sample.
    """

    tokens: torch.Tensor
    logits: torch.Tensor
    token_lengths: torch.Tensor


@dataclass
class ConnectorState:
    """Streaming state of one batch of turns (create with :meth:`MotionConnector.init_state`).

    Attributes:
        keys, values: per layer [B, heads, C, head_dim], the rotary self-attention keys/values of the last
            C = min(position, W) tokens.
        key_valid: [B, C] bool, False for tokens past a sample's end (kept out of later tokens' view).
        history: [B, W, Nq] int64, the last W predicted tokens, newest last; only the last min(position, W)
            slots are filled.
        position: tokens emitted so far in this turn.
        closed: True after a segment shorter than S (the end of a turn); :meth:`reset` reopens.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    key_valid: torch.Tensor
    history: torch.Tensor
    position: int = 0
    closed: bool = False

    @property
    def batch_size(self) -> int:
        return self.history.shape[0]

    def reset(self) -> None:
        """Forget the turn: empty caches and history, position 0 (keeps batch size, device, dtype)."""
        self.keys = [k[:, :, :0] for k in self.keys]
        self.values = [v[:, :, :0] for v in self.values]
        self.key_valid = self.key_valid[:, :0]
        self.history = torch.zeros_like(self.history)
        self.position, self.closed = 0, False


def _rotary(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x [B, H, n, hd] by angles proportional to positions [n] (RoPE)."""
    half = x.shape[-1] // 2
    inv_freq = _ROPE_BASE ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions.to(torch.float32)[:, None] * inv_freq
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


def _repeat_last_frame(hidden: torch.Tensor, lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, T, d] -> [B, frames, d]: frame t becomes frame min(t, length - 1) (padding = last valid frame)."""
    last = (lengths - 1).clamp(min=0)[:, None]
    index = torch.arange(frames, device=hidden.device)[None].minimum(last)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device)[:, None], index]


def sample_tokens(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick codes from logits [..., K]: argmax when temperature is 0, else softmax(logits / T) within top-k.

    Returns:
        [...] int64.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    K = logits.shape[-1]
    if top_k is not None and not 1 <= top_k <= K:
        raise ValueError(f"top_k must be in [1, {K}] or None, got {top_k}")
    if temperature == 0:
        return logits.argmax(-1)
    scaled = logits.float() / temperature
    if top_k is not None:
        kth = scaled.topk(top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = scaled.softmax(-1).reshape(-1, K)
    return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])


class _Attention(nn.Module):
    """Multi-head attention (separate q/k/v/out projections) over F.scaled_dot_product_attention."""

    def __init__(self, cfg: ConnectorConfig):
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.q, self.k, self.v, self.out = (nn.Linear(cfg.hidden, cfg.hidden) for _ in range(4))

    def split(self, x: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        """[B, n, h] -> projected [B, heads, n, h / heads]."""
        B, n, _ = x.shape
        return proj(x).view(B, n, self.heads, -1).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """q [B, H, n, hd], k/v [B, H, m, hd], mask [B, 1, n, m] bool (True = may attend) -> [B, n, h]."""
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        B, _, n, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(B, n, -1))


class _DecoderLayer(nn.Module):
    """Pre-norm decoder layer: windowed self-attention (rotary), per-segment cross-attention, GELU FFN."""

    def __init__(self, cfg: ConnectorConfig):
        super().__init__()
        self.self_norm, self.cross_norm, self.ffn_norm = (nn.LayerNorm(cfg.hidden) for _ in range(3))
        self.self_attn, self.cross_attn = _Attention(cfg), _Attention(cfg)
        self.ffn = nn.Sequential(nn.Linear(cfg.hidden, cfg.ffn), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn, cfg.hidden))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor,
                segment: int, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One layer over queries grouped in segments.

        Args:
            x: [B, n, h] queries; query i belongs to segment i // segment.
            positions: [n] token indices (rotary positions).
            mask: [B, 1, n, C + n] bool self-attention mask over past and new keys.
            memory: [B * ceil(n / segment), W, h] the cross-attention memory of each segment, in order.
            segment: queries per segment.
            past: cached (keys, values) [B, H, C, hd] of earlier tokens, or None (C = 0).

        Returns:
            x [B, n, h] and the (keys, values) [B, H, C + n, hd] of past and new tokens.
        """
        a = self.self_norm(x)
        q = _rotary(self.self_attn.split(a, self.self_attn.q), positions)
        k = _rotary(self.self_attn.split(a, self.self_attn.k), positions)
        v = self.self_attn.split(a, self.self_attn.v)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        x = x + self.drop(self.self_attn.attend(q, k, v, mask))
        x = x + self.drop(self._cross(self.cross_norm(x), memory, segment))
        return x + self.drop(self.ffn(self.ffn_norm(x))), (k, v)

    def _cross(self, x: torch.Tensor, memory: torch.Tensor, segment: int) -> torch.Tensor:
        """Each segment's queries attend to that segment's memory: fold segments into the batch."""
        B, n, h = x.shape
        count = memory.shape[0] // B
        q = F.pad(x, (0, 0, 0, count * segment - n)).reshape(B * count, segment, h)
        att = self.cross_attn
        y = att.attend(att.split(q, att.q), att.split(memory, att.k), att.split(memory, att.v), None)
        return y.reshape(B, count * segment, h)[:, :n]


class MotionConnector(nn.Module):
    """The Motion Connector (see the module docstring for the design)."""

    def __init__(self, cfg: ConnectorConfig):
        super().__init__()
        self.cfg = cfg
        self.input_norm = nn.LayerNorm(cfg.d_llm)
        self.down = nn.Conv1d(cfg.d_llm, cfg.d_llm, cfg.group, stride=cfg.group)
        self.proj = nn.Linear(cfg.d_llm, cfg.hidden)
        self.token_embed = nn.ModuleList(nn.Embedding(cfg.codebook_size, cfg.hidden)
                                         for _ in range(cfg.num_quantizers))
        self.start_embed = nn.Parameter(torch.randn(cfg.hidden) * 0.02)
        self.slot_embed = nn.Parameter(torch.randn(cfg.history_tokens, cfg.hidden) * 0.02)
        self.memory_norm = nn.LayerNorm(cfg.hidden)
        self.layers = nn.ModuleList(_DecoderLayer(cfg) for _ in range(cfg.layers))
        self.out_norm = nn.LayerNorm(cfg.hidden)
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden, cfg.codebook_size) for _ in range(cfg.num_quantizers))

    # --- building blocks ----------------------------------------------------------------------------
    def downsample(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, n * G, d] hidden frames -> H' [B, n, hidden]."""
        x = self.input_norm(hidden.to(self.down.weight.dtype))
        return self.proj(self.down(x.transpose(1, 2)).transpose(1, 2))

    def _embed_memory(self, tokens: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Memory slots tokens [M, W, Nq] (present [M, W] bool; absent slots = before the turn) -> [M, W, h]."""
        codes = tokens.clamp(0, self.cfg.codebook_size - 1)   # absent/padded slots may hold placeholders
        emb = sum(table(codes[..., level]) for level, table in enumerate(self.token_embed))
        emb = torch.where(present[..., None], emb, self.start_embed)
        return self.memory_norm(emb + self.slot_embed)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n, h] -> [B, n, Nq, K]."""
        x = self.out_norm(x)
        return torch.stack([head(x) for head in self.heads], 2)

    def _run_layers(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor,
                    segment: int, past: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        caches = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, positions, mask, memory, segment, None if past is None else past[i])
            caches.append(kv)
        return x, caches

    # --- training -----------------------------------------------------------------------------------
    def forward(self, hidden: torch.Tensor, motion_tokens: torch.Tensor,
                lengths: torch.Tensor | None = None) -> ConnectorOutput:
        """Teacher-forced pass over whole sequences.

        Args:
            hidden: [B, T, d_llm] LLM hidden states at the answer's audio-token steps (25 Hz).
            motion_tokens: [B, M, Nq] ground-truth codes, M >= ceil(max(lengths) / G); positions at or beyond a
                sample's token length are ignored (any value).
            lengths: [B] valid frames per sample (default: all T).

        Returns:
            :class:`ConnectorOutput` with logits [B, ceil(T / G), Nq, K].
        """
        hidden, lengths = self._check_hidden(hidden, lengths)
        cfg, (B, T, _) = self.cfg, hidden.shape
        N = -(-T // cfg.group)
        token_lengths = -(-lengths // cfg.group)
        valid = torch.arange(N, device=hidden.device)[None] < token_lengths[:, None]
        tokens = self._check_tokens(motion_tokens, valid)
        x = self.downsample(_repeat_last_frame(hidden, lengths, N * cfg.group))
        x, _ = self._run_layers(x, torch.arange(N, device=x.device), self._self_mask(valid),
                                self._teacher_memory(tokens), cfg.segment_tokens)
        logits = self._logits(x)
        loss, level_losses = self._loss(logits, tokens, valid)
        return ConnectorOutput(logits, loss, level_losses, token_lengths)

    def _self_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """[B, N] token validity -> [B, 1, N, N]: the segment window, valid keys (and each query itself)."""
        S, W, N = self.cfg.segment_tokens, self.cfg.history_tokens, valid.shape[1]
        idx = torch.arange(N, device=valid.device)
        start = (idx // S * S)[:, None]                    # first token of each query's segment
        window = (idx[None] < start + S) & (idx[None] >= start - W)
        # A query always sees itself, so tokens past a sample's end never face an empty softmax.
        keys = valid[:, None, :] | torch.eye(N, dtype=torch.bool, device=valid.device)
        return (window[None] & keys)[:, None]

    def _teacher_memory(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, N, Nq] tokens -> [B * ceil(N / S), W, h]: segment k's memory is tokens [kS - W, kS)."""
        S, W = self.cfg.segment_tokens, self.cfg.history_tokens
        B, N, Nq = tokens.shape
        count = -(-N // S)
        index = (torch.arange(count, device=tokens.device)[:, None] * S - W
                 + torch.arange(W, device=tokens.device)[None])          # [count, W]
        slots = tokens[:, index.clamp(min=0)].reshape(B * count, W, Nq)
        present = (index >= 0)[None].expand(B, -1, -1).reshape(B * count, W)
        return self._embed_memory(slots, present)

    def _loss(self, logits: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 5: sum over levels of the mean cross-entropy over valid tokens -> (loss, [Nq] per level)."""
        K = self.cfg.codebook_size
        ce = F.cross_entropy(logits.reshape(-1, K).float(), tokens.reshape(-1), reduction="none")
        ce = ce.view(tokens.shape) * valid[..., None]
        level_losses = ce.sum((0, 1)) / valid.sum().clamp(min=1)
        return level_losses.sum(), level_losses

    # --- streaming ----------------------------------------------------------------------------------
    def init_state(self, batch_size: int = 1) -> ConnectorState:
        """A fresh streaming state on this module's device and dtype."""
        cfg, weight = self.cfg, self.proj.weight
        empty = torch.zeros(batch_size, cfg.heads, 0, cfg.hidden // cfg.heads, device=weight.device, dtype=weight.dtype)
        return ConnectorState(
            keys=[empty] * cfg.layers, values=[empty] * cfg.layers,
            key_valid=torch.zeros(batch_size, 0, dtype=torch.bool, device=weight.device),
            history=torch.zeros(batch_size, cfg.history_tokens, cfg.num_quantizers, dtype=torch.long,
                                device=weight.device))

    def forward_segment(self, h_segment: torch.Tensor, state: ConnectorState,
                        valid_tokens: torch.Tensor | None = None, temperature: float = 0.0,
                        top_k: int | None = None, generator: torch.Generator | None = None) -> StepOutput:
        """Predict the next segment's tokens and advance ``state``.

        Args:
            h_segment: [B, F, d_llm] hidden frames of one segment, 0 < F <= S * G. A segment shorter than S * G
                ends the turn (its last frame is repeated up to a whole token; the state closes).
            state: the turn's :class:`ConnectorState` (updated in place).
            valid_tokens: [B] how many of this segment's tokens are real per sample (default all), for
                batches of turns of different lengths.
            temperature, top_k, generator: sampling (see :func:`sample_tokens`); greedy by default.

        Returns:
            :class:`StepOutput` with n = ceil(F / G) tokens.
        """
        cfg = self.cfg
        if state.closed:
            raise RuntimeError("the turn ended with a segment shorter than segment_tokens; reset() the state "
                               "before streaming a new turn")
        h_segment = self._check_segment(h_segment, state)
        B, frames, _ = h_segment.shape
        n = -(-frames // cfg.group)
        full = torch.full((B,), frames, device=h_segment.device)
        x = self.downsample(_repeat_last_frame(h_segment, full, n * cfg.group))
        new_valid = self._segment_validity(valid_tokens, B, n, x.device)
        mask = torch.cat([state.key_valid[:, None, :].expand(B, n, -1),
                          new_valid[:, None, :] | torch.eye(n, dtype=torch.bool, device=x.device)], -1)[:, None]
        W = cfg.history_tokens
        present = (torch.arange(W, device=x.device) >= W - min(state.position, W))[None].expand(B, -1)
        positions = state.position + torch.arange(n, device=x.device)
        x, caches = self._run_layers(x, positions, mask, self._embed_memory(state.history, present), n,
                                     list(zip(state.keys, state.values)))
        logits = self._logits(x)
        tokens = sample_tokens(logits, temperature, top_k, generator)
        state.keys = [k[:, :, -W:] for k, _ in caches]
        state.values = [v[:, :, -W:] for _, v in caches]
        state.key_valid = torch.cat([state.key_valid, new_valid], 1)[:, -W:]
        state.history = torch.cat([state.history, tokens], 1)[:, -W:]
        state.position += n
        state.closed = frames < cfg.segment_frames
        return StepOutput(tokens, logits)

    def _segment_validity(self, valid_tokens: torch.Tensor | None, B: int, n: int, device) -> torch.Tensor:
        if valid_tokens is None:
            return torch.ones(B, n, dtype=torch.bool, device=device)
        valid_tokens = torch.as_tensor(valid_tokens, device=device)
        if valid_tokens.shape != (B,) or valid_tokens.min() < 0 or valid_tokens.max() > n:
            raise ValueError(f"valid_tokens must be [{B}] integers in [0, {n}], got {valid_tokens.tolist()}")
        return torch.arange(n, device=device)[None] < valid_tokens[:, None]

    @torch.no_grad()
    def generate(self, hidden: torch.Tensor, lengths: torch.Tensor | None = None, temperature: float = 0.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> GenerateOutput:
        """Run the streaming path over whole sequences (segment-wise autoregression, own predictions fed back).

        Dropout follows the module's mode: call ``.eval()`` first for deterministic output.

        Args:
            hidden: [B, T, d_llm] hidden states (25 Hz); lengths: [B] valid frames (default all T).
            temperature, top_k, generator: sampling (greedy by default).

        Returns:
            :class:`GenerateOutput` with N = ceil(T / G) tokens per sample.
        """
        hidden, lengths = self._check_hidden(hidden, lengths)
        cfg, (B, T, _) = self.cfg, hidden.shape
        N = -(-T // cfg.group)
        token_lengths = -(-lengths // cfg.group)
        frames = _repeat_last_frame(hidden, lengths, N * cfg.group)
        state, steps = self.init_state(B), []
        for start in range(0, N, cfg.segment_tokens):
            stop = min(start + cfg.segment_tokens, N)
            valid = (token_lengths - start).clamp(0, stop - start)
            steps.append(self.forward_segment(frames[:, start * cfg.group: stop * cfg.group], state, valid,
                                              temperature, top_k, generator))
        tokens = torch.cat([s.tokens for s in steps], 1)
        logits = torch.cat([s.logits for s in steps], 1)
        valid = torch.arange(N, device=tokens.device)[None] < token_lengths[:, None]
        return GenerateOutput(tokens.masked_fill(~valid[..., None], PAD_TOKEN), logits, token_lengths)

    def streaming(self, batch_size: int = 1, temperature: float = 0.0, top_k: int | None = None,
                  generator: torch.Generator | None = None) -> "ConnectorStream":
        """A stateful segment-by-segment generator (context manager; ``reset()`` between turns)."""
        return ConnectorStream(self, batch_size, temperature, top_k, generator)

    # --- input checks -------------------------------------------------------------------------------
    def _check_hidden(self, hidden: torch.Tensor, lengths: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        if hidden.ndim != 3 or hidden.shape[-1] != self.cfg.d_llm or not hidden.is_floating_point():
            raise ValueError(f"hidden must be a float tensor [B, T, {self.cfg.d_llm}], got "
                             f"{tuple(hidden.shape)} {hidden.dtype}")
        B, T, _ = hidden.shape
        if T == 0:
            raise ValueError("hidden has no frames (T = 0)")
        if lengths is None:
            return hidden, torch.full((B,), T, device=hidden.device, dtype=torch.long)
        lengths = torch.as_tensor(lengths, device=hidden.device)
        if lengths.shape != (B,) or lengths.is_floating_point() or lengths.min() < 0 or lengths.max() > T:
            raise ValueError(f"lengths must be [{B}] integers in [0, T={T}] (frames), got {lengths.tolist()}")
        return hidden, lengths.long()

    def _check_tokens(self, motion_tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """[B, M, Nq] -> [B, N, Nq] int64 with ignored positions set to 0; validates the used ones."""
        B, N = valid.shape
        Nq, K = self.cfg.num_quantizers, self.cfg.codebook_size
        need = int(valid.sum(1).max()) if B else 0
        if (motion_tokens.ndim != 3 or motion_tokens.shape[0] != B or motion_tokens.shape[2] != Nq
                or motion_tokens.shape[1] < need or motion_tokens.is_floating_point()):
            raise ValueError(f"motion_tokens must be integers [{B}, >= {need}, {Nq}] (ceil(lengths / "
                             f"{self.cfg.group}) tokens), got {tuple(motion_tokens.shape)} {motion_tokens.dtype}")
        tokens = motion_tokens.to(valid.device, torch.long)[:, :N]
        tokens = F.pad(tokens, (0, 0, 0, N - tokens.shape[1]))
        used = tokens[valid]
        if used.numel() and (used.min() < 0 or used.max() >= K):
            raise ValueError(f"motion_tokens within the lengths must be in [0, {K}), got "
                             f"[{int(used.min())}, {int(used.max())}]")
        return tokens.masked_fill(~valid[..., None], 0)

    def _check_segment(self, h_segment: torch.Tensor, state: ConnectorState) -> torch.Tensor:
        cfg = self.cfg
        if (h_segment.ndim != 3 or h_segment.shape[0] != state.batch_size or h_segment.shape[2] != cfg.d_llm
                or not 0 < h_segment.shape[1] <= cfg.segment_frames or not h_segment.is_floating_point()):
            raise ValueError(f"h_segment must be a float tensor [{state.batch_size}, F, {cfg.d_llm}] with "
                             f"0 < F <= {cfg.segment_frames} (segment_tokens * group), got {tuple(h_segment.shape)}")
        return h_segment

    # --- checkpoints --------------------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (component "connector")."""
        return save_component(folder, PART, self.cfg, self.state_dict())

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "MotionConnector":
        """Load from a connector folder, or an A²-LLM checkpoint folder (its a2llm.json "connector" part)."""
        cfg, state = load_component(path, PART, ConnectorConfig)
        model = cls(cfg)
        model.load_state_dict(state)
        return model.to(device)


class ConnectorStream:
    """Segment-by-segment generation for one batch of turns, holding its :class:`ConnectorState`.

    ``step(h_segment)`` takes the next S * G hidden frames (fewer only for the turn's last segment) and returns
    that segment's tokens; ``reset()`` starts a new turn. As a context manager it resets on exit.
    """

    def __init__(self, connector: MotionConnector, batch_size: int = 1, temperature: float = 0.0,
                 top_k: int | None = None, generator: torch.Generator | None = None):
        self.connector = connector
        self.state = connector.init_state(batch_size)
        self.temperature, self.top_k, self.generator = temperature, top_k, generator
        self.last_logits: torch.Tensor | None = None

    @property
    def frames_per_segment(self) -> int:
        return self.connector.cfg.segment_frames

    @torch.no_grad()
    def step(self, h_segment: torch.Tensor) -> torch.Tensor:
        """[B, F, d_llm] (F <= S * G) -> tokens [B, ceil(F / G), Nq] int64."""
        out = self.connector.forward_segment(h_segment, self.state, None, self.temperature, self.top_k,
                                             self.generator)
        self.last_logits = out.logits
        return out.tokens

    def reset(self) -> None:
        self.state.reset()
        self.last_logits = None

    def __enter__(self) -> "ConnectorStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()
