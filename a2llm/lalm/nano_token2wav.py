"""Nano token2wav: 25 Hz phonetic frame tokens -> log-mel (small conv net) -> Griffin-Lim, streamed in chunks.

    from a2llm.lalm.nano_token2wav import NanoToken2Wav
    detok = NanoToken2Wav.from_pretrained("checkpoints/a2llm-nano")   # or a token2wav component folder
    pcm = detok.decode(tokens)          # float32 [640 N] at 16 kHz (N tokens of 40 ms)

The network is non-causal but local: token embedding, ``token_layers`` residual convs at the token rate, a
per-token upsampling (ConvTranspose with kernel = stride, so no token leaks into another's frames) to the mel
frame rate (hop 160 at 16 kHz: 4 frames per token) and ``frame_layers`` residual convs there. Its receptive
field (:attr:`NanoToken2WavConfig.receptive_field`) is at most the 3 lookahead tokens to the right, so a chunk
computed from its left context + the chunk + 3 lookahead tokens has exactly the mel of the whole utterance
(padding zeros at a window's edges reach no output that is kept).

Phase comes from Griffin-Lim run per chunk (:class:`StreamingGriffinLim`): each chunk's GL window starts with
``overlap_tokens`` of already emitted audio, which is held fixed in every iteration (the new phases grow out of
the audio that was played), carries the previous chunk's phases as initial guess, reaches into the lookahead's
provisional mel on the right, and its first ``crossfade`` samples are faded in from the previous chunk's
continuation. :meth:`NanoToken2Wav.decode` runs this same streaming path, so streamed audio equals the whole
decode for any way of splitting the tokens (up to float rounding, < 1e-4); :meth:`NanoToken2Wav.decode_global`
is one Griffin-Lim over the whole utterance, the offline reference for quality comparisons.

Voices: the network was trained on one espeak-ng voice and has no speaker embedding, so its other voices
(:data:`VOICES`) are vocal-tract-length warps of that one: each frame's linear magnitude spectrum is resampled on a
frequency axis scaled by a factor alpha before Griffin-Lim (:func:`warp_matrix`; formants and harmonics at f move
to alpha f, i.e. both the formants and the pitch), then rescaled to the frame's original energy. The warp acts on
each frame alone, so a voice changes neither the length nor the timing of the speech (motion sync) and streaming
still equals the whole decode::

    detok.voices()                          # ['default', 'lower', 'higher', 'child']
    pcm = detok.with_voice("lower").decode(tokens)      # same weights, same length, lower formants
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2llm.checkpoint import load_component, save_component
from a2llm.data.phones import PHONES
from a2llm.lalm.detokenizer import MANIFEST_PART, Detokenizer, DetokenizerStream

PART = "token2wav"
#: Where ``load_detokenizer("nano")`` looks: the embedded A²-LLM-nano checkpoint (a2llm.json part "detokenizer").
DEFAULT_NANO = Path(__file__).resolve().parents[2] / "checkpoints" / "a2llm-nano"
#: The nano voices: name -> vocal-tract-length factor alpha (frequency axis scaling of the magnitude spectrum).
#: On checkpoints/a2llm-nano the output's spectral centroid moves by about alpha (tests/lalm/test_nano_voices.py).
VOICES: dict[str, float] = {"default": 1.0, "lower": 0.88, "higher": 1.12, "child": 1.25}


@dataclass(frozen=True)
class NanoToken2WavConfig:
    """Token2wav network, mel analysis and streaming Griffin-Lim settings (saved as config.json)."""

    num_tokens: int = len(PHONES)      # phone classes; id 0 is silence
    sample_rate: int = 16000
    token_rate: int = 25
    n_fft: int = 1024                  # FFT size (zero-padded window: finer mel resolution at low frequencies)
    win_length: int = 640              # 40 ms Hann window = one token
    hop_length: int = 160              # 10 ms: 4 mel frames per token
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor: float = 1e-5            # log-mel = log(max(mel magnitude, floor))
    channels: int = 192
    token_layers: int = 2
    token_kernel: int = 3
    frame_layers: int = 2
    frame_kernel: int = 5
    chunk_tokens: int = 25
    lookahead_tokens: int = 3
    gl_iters: int = 16                 # per chunk; 32 scored 0.167 vs 0.179 log-mel L1 for twice the time (BENCH.md)
    gl_momentum: float = 0.99          # fast Griffin-Lim (Perraudin et al. 2013)
    overlap_tokens: int = 2            # emitted audio each chunk's GL starts from (>= win_length / 2 needed)
    crossfade: int = 160               # samples faded from the previous chunk's continuation into the new one
    nnls_iters: int = 20               # multiplicative NNLS refinement of the inverse mel filterbank
    seed: int = 0                      # Griffin-Lim's initial random phases

    def __post_init__(self) -> None:
        if self.sample_rate % self.token_rate or (self.sample_rate // self.token_rate) % self.hop_length:
            raise ValueError(f"sample_rate / token_rate ({self.sample_rate}/{self.token_rate}) must be a whole "
                             f"number of hops ({self.hop_length})")
        if not self.hop_length <= self.win_length <= self.n_fft:
            raise ValueError(f"need hop_length <= win_length <= n_fft, got {self.hop_length}, {self.win_length}, "
                             f"{self.n_fft}")
        if self.token_kernel % 2 == 0 or self.frame_kernel % 2 == 0:
            raise ValueError("token_kernel and frame_kernel must be odd (centred convolutions)")
        if self.receptive_field > self.lookahead_tokens:
            raise ValueError(f"the network sees {self.receptive_field} tokens ahead but a chunk waits for only "
                             f"{self.lookahead_tokens}: fewer/smaller layers or more lookahead")
        if self.overlap_tokens * self.frames_per_token * self.hop_length < self.win_length // 2 + self.hop_length:
            raise ValueError("overlap_tokens too small: the fixed audio must cover the windows that straddle a join")
        if not 0 <= self.crossfade <= self.lookahead_tokens * self.frames_per_token * self.hop_length:
            raise ValueError("crossfade must be within the lookahead's audio")

    @property
    def frames_per_token(self) -> int:
        return self.sample_rate // self.token_rate // self.hop_length

    @property
    def samples_per_token(self) -> int:
        return self.sample_rate // self.token_rate

    @property
    def receptive_field(self) -> int:
        """Tokens on each side that one token's mel frames depend on."""
        frames = self.frame_layers * (self.frame_kernel // 2)
        return self.token_layers * (self.token_kernel // 2) + math.ceil(frames / self.frames_per_token)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1


# --- spectral helpers -------------------------------------------------------------------------------------------
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular filters on the HTK mel scale with Slaney area normalisation: [n_mels, n_fft // 2 + 1]."""
    def to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    def to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    fb = tri * (2.0 / (hi - lo))            # equal area: a flat spectrum gives equal mel energies
    if (fb.sum(1) == 0).any():
        raise ValueError(f"n_fft {n_fft} is too small for {n_mels} mel bands from {f_min} Hz: some are empty")
    return torch.from_numpy(fb.astype(np.float32))


def warp_matrix(n_freq: int, alpha: float, taps: int = 8) -> torch.Tensor:
    """Vocal-tract-length warp of a magnitude spectrum: [n_freq, n_freq] W with ``(W @ mag)[k]`` = the mean of
    ``mag`` (linearly interpolated) over source bins [(k - 1/2) / alpha, (k + 1/2) / alpha].

    Averaging over the source span (``taps`` points) instead of sampling one point keeps narrow peaks when
    alpha < 1 squeezes several source bins into one; source positions past Nyquist (alpha < 1: the top of the
    output band) contribute nothing. ``alpha == 1`` is the identity."""
    if not alpha > 0:
        raise ValueError(f"warp factor alpha must be positive, got {alpha}")
    k = np.arange(n_freq, dtype=np.float64)[:, None]
    pos = (k + (np.arange(taps) + 0.5)[None, :] / taps - 0.5) / alpha          # [n_freq, taps] source positions
    pos = np.clip(pos, 0.0, None)
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    w = np.zeros((n_freq, n_freq + 1))
    rows = np.broadcast_to(np.arange(n_freq)[:, None], pos.shape)
    # bins >= n_freq (past Nyquist) land in an extra column that is dropped
    np.add.at(w, (rows, np.minimum(lo, n_freq)), (1 - frac) / taps)
    np.add.at(w, (rows, np.minimum(lo + 1, n_freq)), frac / taps)
    return torch.from_numpy(w[:, :n_freq].astype(np.float32))


def stft_frames(audio: torch.Tensor, cfg: NanoToken2WavConfig, window: torch.Tensor) -> torch.Tensor:
    """Complex STFT with frame i centred on sample i * hop: [..., L] -> [..., n_freq, L // hop].

    The frame centred on the last sample boundary (``L``) is dropped so that a signal of N tokens has exactly
    ``N * frames_per_token`` frames, frame f belonging to token f // frames_per_token.
    """
    spec = torch.stft(audio, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True, return_complex=True)
    return spec[..., : audio.shape[-1] // cfg.hop_length]


def istft_frames(spec: torch.Tensor, cfg: NanoToken2WavConfig, window: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`stft_frames`: [n_freq, F] -> [F * hop]."""
    return torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=True,
                       length=spec.shape[-1] * cfg.hop_length)


def griffin_lim(magnitude: torch.Tensor, cfg: NanoToken2WavConfig, window: torch.Tensor, *, n_iter: int,
                momentum: float, phase: torch.Tensor | None = None, prefix: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast Griffin-Lim with an optional fixed signal prefix.

    Args:
        magnitude: [n_freq, F] linear STFT magnitudes (frames as in :func:`stft_frames`).
        cfg, window: the STFT settings and its [win_length] window.
        n_iter, momentum: iterations and FGLA momentum (0 gives classic Griffin-Lim).
        phase: [n_freq, F] initial phases; random (from ``generator``) where None.
        prefix: [P] samples the signal must start with (already played audio); re-imposed every iteration.

    Returns:
        signal [F * hop] and the final complex spectrogram [n_freq, F] (its phases carry on to the next chunk).
    """
    if phase is None:
        phase = 2 * math.pi * torch.rand(magnitude.shape, generator=generator)
    spec = torch.polar(magnitude, phase)
    previous = None

    def consistent(s: torch.Tensor) -> torch.Tensor:
        x = istft_frames(s, cfg, window)
        if prefix is not None and len(prefix):
            x = torch.cat([prefix, x[len(prefix):]])
        return x

    for _ in range(n_iter):
        rebuilt = stft_frames(consistent(spec), cfg, window)
        accel = rebuilt if previous is None else rebuilt + momentum * (rebuilt - previous)
        previous = rebuilt
        spec = magnitude * accel / accel.abs().clamp_min(1e-12)
    return consistent(spec), spec


# --- the network ------------------------------------------------------------------------------------------------
def _channel_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """LayerNorm over channels of [B, C, T] (position-local, so it streams)."""
    return norm(x.transpose(1, 2)).transpose(1, 2)


class _ResidualConv(nn.Module):
    """x + conv(gelu(norm(x)) * mask): masking the conv input makes padded positions act as zero padding."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.gelu(_channel_norm(x, self.norm)) * mask)


class Token2Mel(nn.Module):
    """Tokens [B, N] -> log-mel [B, n_mels, N * frames_per_token]."""

    def __init__(self, cfg: NanoToken2WavConfig):
        super().__init__()
        self.cfg = cfg
        c, up = cfg.channels, cfg.frames_per_token
        self.embed = nn.Embedding(cfg.num_tokens, c)
        self.token_convs = nn.ModuleList(_ResidualConv(c, cfg.token_kernel) for _ in range(cfg.token_layers))
        self.upsample = nn.ConvTranspose1d(c, c, kernel_size=up, stride=up)
        self.frame_convs = nn.ModuleList(_ResidualConv(c, cfg.frame_kernel) for _ in range(cfg.frame_layers))
        self.out_norm = nn.LayerNorm(c)
        self.proj = nn.Conv1d(c, cfg.n_mels, 1)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            tokens: [B, N] int64 token ids.
            mask: [B, N] 1 for real tokens, 0 for padding (padding then behaves like the sequence's end).

        Returns:
            [B, n_mels, N * frames_per_token] natural-log mel magnitudes.
        """
        mask = torch.ones(tokens.shape, dtype=torch.float32) if mask is None else mask.float()
        m = mask[:, None, :]
        x = self.embed(tokens).transpose(1, 2)
        for conv in self.token_convs:
            x = conv(x, m)
        x = self.upsample(F.gelu(x) * m)
        fm = m.repeat_interleave(self.cfg.frames_per_token, dim=2)
        for conv in self.frame_convs:
            x = conv(x, fm)
        return self.proj(F.gelu(_channel_norm(x, self.out_norm)))


# --- streaming Griffin-Lim --------------------------------------------------------------------------------------
class StreamingGriffinLim:
    """Griffin-Lim over consecutive chunks of frames, joined without clicks (see the module docstring).

    State: the last ``overlap_tokens`` of emitted audio and their magnitudes, the phases of those frames and of
    the previous chunk's lookahead frames, and the previous chunk's continuation into its lookahead (for the
    cross-fade). Initial random phases come from a generator seeded by (seed, chunk index), so the result does
    not depend on how tokens were pushed.
    """

    def __init__(self, cfg: NanoToken2WavConfig, window: torch.Tensor):
        self.cfg, self.window = cfg, window
        self.reset()

    def reset(self) -> None:
        self.past_mag = torch.zeros(self.cfg.n_freq, 0)
        self.past_audio = torch.zeros(0)
        self.carry_phase = torch.zeros(self.cfg.n_freq, 0)
        self.continuation = torch.zeros(0)
        self.chunk_index = 0

    def step(self, magnitude: torch.Tensor, lookahead: torch.Tensor | None = None) -> torch.Tensor:
        """Frames [n_freq, F] (final) + provisional lookahead frames [n_freq, F'] -> audio [F * hop]."""
        cfg, hop = self.cfg, self.cfg.hop_length
        lookahead = torch.zeros(cfg.n_freq, 0) if lookahead is None else lookahead
        n_past, n_new = self.past_mag.shape[1], magnitude.shape[1]
        if n_new == 0:
            return torch.zeros(0)
        mag = torch.cat([self.past_mag, magnitude, lookahead], 1)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.chunk_index)
        phase = 2 * math.pi * torch.rand(mag.shape, generator=gen)
        k = min(self.carry_phase.shape[1], mag.shape[1])
        phase[:, :k] = self.carry_phase[:, :k]
        signal, spec = griffin_lim(mag, cfg, self.window, n_iter=cfg.gl_iters, momentum=cfg.gl_momentum,
                                   phase=phase, prefix=self.past_audio)
        start, end = n_past * hop, (n_past + n_new) * hop
        out = signal[start:end].clone()
        x = min(len(self.continuation), len(out))
        if x:   # fade from where the previous chunk's solution was heading into this chunk's
            fade = 0.5 - 0.5 * torch.cos(torch.linspace(0, math.pi, x + 2)[1:-1])
            out[:x] = (1 - fade) * self.continuation[:x] + fade * out[:x]
        keep = min(cfg.overlap_tokens * cfg.frames_per_token, n_past + n_new)
        self.past_mag = mag[:, n_past + n_new - keep: n_past + n_new]
        self.past_audio = torch.cat([self.past_audio, out])[-keep * hop:]
        self.carry_phase = spec[:, n_past + n_new - keep:].angle()
        self.continuation = signal[end:end + cfg.crossfade].clone()
        self.chunk_index += 1
        return out


# --- the detokenizer --------------------------------------------------------------------------------------------
class NanoToken2Wav(Detokenizer):
    """Nano detokenizer: phone-frame tokens [N] -> 16 kHz speech [640 N] (see the module docstring)."""

    def __init__(self, model: Token2Mel, voice: str = "default"):
        self.model = model.eval()
        cfg = model.cfg
        self.cfg = cfg
        self.sample_rate, self.num_tokens, self.token_rate = cfg.sample_rate, cfg.num_tokens, cfg.token_rate
        self.chunk_tokens, self.lookahead_tokens = cfg.chunk_tokens, cfg.lookahead_tokens
        # The first chunk is 10 tokens (0.4 s): speech, and with it the first video segment, can start after 13
        # tokens instead of 28; the second is 15 (0.6 s), so the app's second segment (0.4-1.0 s) need not wait for
        # a whole second of speech while the first plays (docs/BENCH.md: that wait was the stall after the first
        # segment). The streaming Griffin-Lim takes chunks of any length, so the audio is unchanged.
        self.first_chunk_tokens = min(10, cfg.chunk_tokens)
        self.chunk_schedule = (self.first_chunk_tokens, min(15, cfg.chunk_tokens))
        self.window = torch.hann_window(cfg.win_length)
        self.mel_basis = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
        self._mel_pinv = torch.linalg.pinv(self.mel_basis)
        self._set_voice(self.check_voice(voice))

    # --- voices ---------------------------------------------------------------------------------------------
    def voices(self) -> list[str]:
        return list(VOICES)

    @property
    def warp(self) -> float:
        """This voice's vocal-tract-length factor alpha (:data:`VOICES`)."""
        return VOICES[self.voice]

    def _set_voice(self, name: str) -> None:
        self.voice = name
        self._warp = None if VOICES[name] == 1.0 else warp_matrix(self.cfg.n_freq, VOICES[name])

    def _with_voice(self, name: str) -> "NanoToken2Wav":
        other = copy.copy(self)             # shares the network, window and mel basis
        other._set_voice(name)
        return other

    def warp_magnitude(self, mag: torch.Tensor) -> torch.Tensor:
        """This voice's warp of linear magnitudes [n_freq, F], each frame keeping its energy (identity for the
        default voice)."""
        if self._warp is None:
            return mag
        warped = self._warp @ mag
        energy, new = (x.square().sum(0, keepdim=True) for x in (mag, warped))
        return warped * (energy / new.clamp_min(1e-20)).sqrt()

    def magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [n_mels, F] -> the linear magnitudes Griffin-Lim gets for this voice [n_freq, F]."""
        return self.warp_magnitude(self.mel_to_magnitude(log_mel))

    @property
    def config(self) -> NanoToken2WavConfig:
        return self.cfg

    # --- analysis (training targets) and the inverse --------------------------------------------------------
    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [..., 640 N] -> log-mel [..., n_mels, 4 N] (the network's target)."""
        if audio.shape[-1] % self.cfg.samples_per_token:
            raise ValueError(f"audio length {audio.shape[-1]} is not a whole number of tokens "
                             f"({self.cfg.samples_per_token} samples); trim or pad it first")
        mag = stft_frames(audio, self.cfg, self.window).abs()
        return torch.log((self.mel_basis @ mag).clamp_min(self.cfg.log_floor))

    def mel_to_magnitude(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [n_mels, F] -> non-negative linear magnitudes [n_freq, F] (pseudo-inverse, then NNLS steps)."""
        mel = log_mel.exp()
        basis = self.mel_basis
        mag = (self._mel_pinv @ mel).clamp_min(1e-8)
        numerator = basis.T @ mel
        for _ in range(self.cfg.nnls_iters):   # Lee-Seung updates keep mag >= 0 and lower ||basis mag - mel||
            mag = mag * numerator / (basis.T @ (basis @ mag)).clamp_min(1e-12)
        return mag

    @torch.no_grad()
    def mel(self, tokens) -> torch.Tensor:
        """Whole-utterance log-mel of tokens [N]: [n_mels, 4 N]."""
        t = torch.from_numpy(self.check_tokens(tokens))
        if len(t) == 0:
            return torch.zeros(self.cfg.n_mels, 0)
        return self.model(t[None])[0]

    # --- decoding -------------------------------------------------------------------------------------------
    def stream(self) -> "NanoToken2WavStream":
        return NanoToken2WavStream(self)

    @torch.no_grad()
    def decode_global(self, tokens, n_iter: int | None = None) -> np.ndarray:
        """One Griffin-Lim over the whole utterance (offline reference, not the streaming path)."""
        mag = self.magnitude(self.mel(tokens))
        gen = torch.Generator().manual_seed(self.cfg.seed)
        signal, _ = griffin_lim(mag, self.cfg, self.window, n_iter=n_iter or self.cfg.gl_iters,
                                momentum=self.cfg.gl_momentum, generator=gen)
        return signal.numpy().astype(np.float32)

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        return save_component(folder, PART, self.cfg, self.model.state_dict())

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "NanoToken2Wav":
        """Load a token2wav component folder, or an A²-LLM checkpoint folder (its a2llm.json part "detokenizer")."""
        path = Path(path)
        manifest = path / "a2llm.json"
        if manifest.exists():
            parts = json.loads(manifest.read_text()).get("parts", {})
            if MANIFEST_PART not in parts:
                raise FileNotFoundError(f"{manifest} names no {MANIFEST_PART!r} part (has {sorted(parts)}); train "
                                        "one with `python -m a2llm.train token2wav` and register it")
            path = path / parts[MANIFEST_PART]
        cfg, state = load_component(path, PART, NanoToken2WavConfig)
        model = Token2Mel(cfg)
        model.load_state_dict(state)
        return cls(model)


class NanoToken2WavStream(DetokenizerStream):
    """Streaming state of :class:`NanoToken2Wav`: the token history (in the base) plus a streaming Griffin-Lim."""

    def __init__(self, detokenizer: NanoToken2Wav):
        self.gl = StreamingGriffinLim(detokenizer.cfg, detokenizer.window)
        super().__init__(detokenizer)

    def _reset_state(self) -> None:
        self.gl.reset()

    @torch.no_grad()
    def _decode(self, start: int, end: int, final: bool) -> np.ndarray:
        d: NanoToken2Wav = self.detokenizer
        cfg = d.cfg
        if end == start:
            return np.zeros(0, np.float32)
        ahead = 0 if final else cfg.lookahead_tokens
        w0 = max(0, start - cfg.receptive_field)        # left context: exactly what the chunk's frames see
        window = torch.from_numpy(self.tokens[w0:end + ahead])
        log_mel = d.model(window[None])[0]
        fpt = cfg.frames_per_token
        mag = d.magnitude(log_mel[:, (start - w0) * fpt:])
        n = (end - start) * fpt
        # frames of the lookahead tokens are provisional (they depend on tokens not yet seen): GL context only
        return self.gl.step(mag[:, :n], mag[:, n:]).numpy()


def load_nano(argument: str | None) -> NanoToken2Wav:
    """Registry factory: ``"nano"`` (the embedded checkpoint), ``"nano:FOLDER"``, or ``"nano:random"``.

    ``nano:random`` is an untrained network with the default config (seed 0): audio of the right length and
    timing but not speech, for tests and pipelines that need no real voice.
    """
    if argument == "random":
        torch.manual_seed(0)
        return NanoToken2Wav(Token2Mel(NanoToken2WavConfig()))
    path = Path(argument) if argument else DEFAULT_NANO
    if not path.exists():
        raise FileNotFoundError(f"no nano token2wav at {path}: train one with `python -m a2llm.train token2wav "
                                f"--data data/flame-qa-nano --out {DEFAULT_NANO / 'token2wav'}` (and register it in "
                                "a2llm.json), or use 'nano:random' for an untrained one")
    return NanoToken2Wav.from_pretrained(path)
