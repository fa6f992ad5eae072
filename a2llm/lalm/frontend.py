"""Log-mel front end of the Step-Audio-2 audio encoder: 16 kHz audio -> 128-bin Whisper log-mel.

Whisper's recipe (n_fft 400, hop 160, periodic Hann window, centred STFT whose last frame is dropped,
Slaney-normalised Slaney-scale mel filters over 0-8 kHz, log10 clamped at 1e-10, floored at max - 8, then
``(x + 4) / 4``) with Step-Audio-2's two additions from its public inference code (docs/STEP_AUDIO2.md):

* every clip is zero-padded on the right by 479 samples before the STFT, so a clip of N samples gives
  ``(N + 479) // 160`` mel frames;
* long audio is cut into 25 s chunks, each computed (and max-normalised) on its own and each becoming its
  own ``<audio_start> ... <audio_end>`` block in the prompt.

Batches are computed in one STFT; each row gets exactly the frames it would get alone (its samples past
``lengths`` are zeroed, its max is taken over its own frames) and frames past its end are 0, the value the
public code pads its mel batches with.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.audio_utils import mel_filter_bank


@dataclass(frozen=True)
class FrontendConfig:
    """Front-end constants (all fixed by the released model; only ``n_mels`` differs between encoders).

    Attributes:
        n_mels: mel bins (128 for Step-Audio-2).
        sample_rate: input sample rate in Hz.
        n_fft: STFT size (and Hann window length).
        hop_length: STFT hop in samples (100 frames/s).
        pad_samples: zeros appended to every clip before the STFT.
        chunk_samples: longest clip the encoder takes at once (25 s).
    """

    n_mels: int = 128
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    pad_samples: int = 479
    chunk_samples: int = 25 * 16000


def num_mel_frames(num_samples: int, config: FrontendConfig = FrontendConfig()) -> int:
    """Mel frames of one clip (at most one chunk) of ``num_samples`` samples."""
    return (num_samples + config.pad_samples) // config.hop_length


def chunk_spans(num_samples: int, config: FrontendConfig = FrontendConfig()) -> list[tuple[int, int]]:
    """(start, length) of the 25 s chunks a clip is cut into, in order (none for an empty clip)."""
    step = config.chunk_samples
    return [(s, min(step, num_samples - s)) for s in range(0, num_samples, step)]


class LogMelFrontend(nn.Module):
    """Batched log-mel spectrogram. Holds no parameters and no buffers.

    The filterbank is kept as a float32 CPU tensor outside the module's buffers and copied to the audio's
    device on use, so casting the model to bf16 or building it on the meta device leaves it exact.

    Args:
        config: front-end constants.
    """

    def __init__(self, config: FrontendConfig = FrontendConfig()):
        super().__init__()
        self.config = config
        filters = mel_filter_bank(num_frequency_bins=config.n_fft // 2 + 1, num_mel_filters=config.n_mels,
                                  min_frequency=0.0, max_frequency=config.sample_rate / 2,
                                  sampling_rate=config.sample_rate, norm="slaney", mel_scale="slaney")
        self._filters = {torch.device("cpu"): torch.from_numpy(filters.T.astype("float32"))}   # [n_mels, F]

    def filters(self, device: torch.device) -> torch.Tensor:
        """The [n_mels, n_fft // 2 + 1] Slaney mel filterbank (float32) on ``device``."""
        if device not in self._filters:
            self._filters[device] = self._filters[torch.device("cpu")].to(device)
        return self._filters[device]

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel of a batch of clips, each at most one chunk (25 s) long.

        Args:
            audio: [B, N] float audio at 16 kHz, right-padded.
            lengths: [B] samples of real audio per row (default: all N).

        Returns:
            mel: [B, n_mels, T] float32 with T = (N + 479) // 160; frames past a row's end are 0.
            mel_lengths: [B] int64 frames per row, ``num_mel_frames(lengths)``.
        """
        cfg = self.config
        if audio.dim() != 2:
            raise ValueError(f"audio must be [B, N] samples, got shape {tuple(audio.shape)}")
        B, N = audio.shape
        if lengths is None:
            lengths = torch.full((B,), N, dtype=torch.long, device=audio.device)
        lengths = torch.as_tensor(lengths, device=audio.device).long()
        if lengths.shape != (B,) or (lengths < 0).any() or (lengths > N).any():
            raise ValueError(f"lengths must be [B={B}] values in [0, {N}], got {lengths.tolist()}")
        if (lengths > cfg.chunk_samples).any():
            raise ValueError(f"clips longer than {cfg.chunk_samples} samples (25 s) must be cut with chunk_spans "
                             f"first; got lengths {lengths.tolist()}")
        # Computed in float32 whatever dtype the model runs in: bf16 log-mels would lose the floor at max - 8.
        x = audio.float() * (torch.arange(N, device=audio.device) < lengths[:, None])
        x = nn.functional.pad(x, (0, cfg.pad_samples))
        window = torch.hann_window(cfg.n_fft, device=audio.device)
        stft = torch.stft(x, cfg.n_fft, cfg.hop_length, window=window, return_complex=True)
        power = (stft[..., :-1].abs() ** 2).contiguous()                   # [B, F, T]
        log_spec = torch.clamp(self.filters(audio.device) @ power, min=1e-10).log10()
        mel_lengths = (lengths + cfg.pad_samples) // cfg.hop_length
        valid = (torch.arange(log_spec.shape[-1], device=audio.device) < mel_lengths[:, None])[:, None, :]
        peak = log_spec.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
        log_spec = (torch.maximum(log_spec, peak - 8.0) + 4.0) / 4.0
        return log_spec.masked_fill(~valid, 0.0), mel_lengths
