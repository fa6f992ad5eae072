"""The audio-only avatar (a FaceFormer-style baseline at nano scale): motion from the speech alone, no LLM.

    speech 16 kHz -> log-mel 128 -> audio encoder (Whisper-style, 25 Hz) -> Linear -> Motion Connector -> RVQ codes

The same connector class and the same motion tokenizer as A²-LLM, trained on the same answers with the same
loss (Eq. 5) — only what drives the connector differs: features of the answer's *audio* instead of the LLM's
hidden states. FLAME-QA-nano's speech carries no emotion (espeak-ng), so this model cannot know the emotion
of the text: the Semantic-Emotion Gap the seed's table 3 measures.

    model = AudioOnlyAvatar.from_pretrained("checkpoints/a2llm-nano/baselines/audio-only")
    motion = model.animate(audio, 16000, tokenizer)          # [T, 58] at 25 fps, T = round(25 * seconds)
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2llm.checkpoint import load_component, save_component
from a2llm.connector import ConnectorConfig, MotionConnector
from a2llm.lalm.encoder import AudioEncoder, EncoderConfig
from a2llm.lalm.frontend import LogMelFrontend

PART = "audio_only"


@dataclass(frozen=True)
class AudioOnlyConfig:
    """Sizes: the encoder as nano's, the connector as nano's (its ``d_llm`` is ``width``)."""

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(n_audio_state=64, n_audio_head=2,
                                                                         n_audio_layer=2, llm_dim=128,
                                                                         adapter_hidden=256))
    width: int = 128
    connector: ConnectorConfig = field(default_factory=lambda: ConnectorConfig.nano(128))
    sample_rate: int = 16000


class AudioOnlyAvatar(nn.Module):
    def __init__(self, config: AudioOnlyConfig = AudioOnlyConfig()):
        super().__init__()
        self.config = config
        self.frontend = LogMelFrontend()
        self.encoder = AudioEncoder(config.encoder)
        self.proj = nn.Linear(config.encoder.n_audio_state, config.width)
        self.connector = MotionConnector(config.connector)

    def features(self, audio: torch.Tensor, lengths: torch.Tensor, frames: int) -> torch.Tensor:
        """[B, N] 16 kHz speech -> [B, frames, width] features on the 25 fps motion timeline.

        The encoder gives one frame per 40 ms; its count can differ from round(25 s) by one or two, so the
        sequence is cut or its last frame repeated to ``frames``."""
        mel, mel_lengths = self.frontend(audio, lengths)
        enc, _ = self.encoder(mel, mel_lengths)
        x = self.proj(enc)
        if x.shape[1] < frames:
            x = torch.cat([x, x[:, -1:].expand(-1, frames - x.shape[1], -1)], dim=1)
        return x[:, :frames]

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor, motion_tokens: torch.Tensor,
                motion_lengths: torch.Tensor):
        """Training pass: returns the connector's output (``.loss`` is Eq. 5)."""
        h = self.features(audio, lengths, int(motion_lengths.max()))
        return self.connector(h, motion_tokens, motion_lengths)

    @torch.no_grad()
    def animate(self, audio: np.ndarray, sample_rate: int, tokenizer, motion_decode: str = "expected") -> np.ndarray:
        """Speech [N] -> motion [T, 58] (T = round(25 N / sr)), decoded with ``tokenizer`` from the predicted codes'
        expected latent (``motion_decode="expected"``, as A²-LLM's default) or their most likely codes ("codes")."""
        from a2llm.generate import check_motion_decode, decode_prediction

        check_motion_decode(motion_decode)
        if sample_rate != self.config.sample_rate:
            raise ValueError(f"audio at {sample_rate} Hz; the audio-only avatar expects {self.config.sample_rate} Hz")
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1 or len(audio) < sample_rate // 25:
            raise ValueError(f"expected mono speech of at least 40 ms, got shape {audio.shape}")
        T = int(round(25 * len(audio) / sample_rate))
        x = torch.from_numpy(audio)[None]
        h = self.features(x, torch.tensor([len(audio)]), T)
        out = self.connector.generate(h, torch.tensor([T]))
        n = -(-T // self.connector.cfg.group)
        return decode_prediction(tokenizer, out.tokens[0, :n], out.logits[0, :n], motion_decode)[:T]

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_component(folder, PART, self.config, self.state_dict())

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "AudioOnlyAvatar":
        cfg, state = load_component(folder, PART, AudioOnlyConfig)
        if isinstance(cfg.encoder, dict):
            cfg = dataclasses.replace(cfg, encoder=EncoderConfig(**cfg.encoder),
                                      connector=ConnectorConfig(**cfg.connector))
        model = cls(cfg)
        model.load_state_dict(state)
        return model.eval()


def train_audio_only(data: str | Path, tokenizer_path: str | Path, out: str | Path, steps: int = 600,
                     batch: int = 16, lr: float = 2e-3, seed: int = 0, progress: bool = True) -> dict:
    """Train on the training split's answers (speech -> motion codes); resumable from ``out/train_state.pt``."""
    from a2llm.data.collate import IGNORE
    from a2llm.motion.tokenizer import MotionTokenizer
    from a2llm.train.curriculum import StageConfig, lr_factor
    from a2llm.train.data import MemoryDataset
    from a2llm.train.log import append_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "done.json").exists():
        return json.loads((out / "done.json").read_text())
    torch.manual_seed(seed)
    tok = MotionTokenizer.from_pretrained(tokenizer_path)
    model = AudioOnlyAvatar(AudioOnlyConfig(connector=ConnectorConfig.nano(
        128, num_quantizers=tok.num_codebooks, codebook_size=tok.cardinality, group=tok.group)))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    sched = StageConfig(name="audio-only", steps=steps, warmup=50)
    start, elapsed = 0, 0.0
    state_path = out / "train_state.pt"
    if state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["weights"])
        opt.load_state_dict(saved["optimizer"])
        start, elapsed = int(saved["step"]), float(saved["seconds"])
    train = MemoryDataset(data, "train")
    codes = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start, desc="audio-only", unit="step")
    model.train()
    t0, total, count = time.time(), 0.0, 0
    for step in range(start, steps):
        rng = np.random.default_rng([seed, step])
        samples = [train[int(i)] for i in rng.integers(0, len(train), batch)]
        for s in samples:
            if s.id not in codes:
                codes[s.id] = torch.from_numpy(tok.encode(s.motion))
        N = max(len(s.response_audio) for s in samples)
        audio = torch.zeros(len(samples), N)
        for b, s in enumerate(samples):
            audio[b, :len(s.response_audio)] = torch.from_numpy(s.response_audio)
        lengths = torch.tensor([len(s.response_audio) for s in samples])
        mlen = torch.tensor([len(s.motion) for s in samples])
        M = max(len(codes[s.id]) for s in samples)
        target = torch.full((len(samples), M, tok.num_codebooks), IGNORE, dtype=torch.long)
        for b, s in enumerate(samples):
            target[b, :len(codes[s.id])] = codes[s.id]
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, sched)
        loss = model(audio, lengths, target, mlen).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        total += loss.item()
        count += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % 25 == 0 or step + 1 == steps:
            append_csv(out / "log.csv", {"step": step + 1, "seconds": round(elapsed + time.time() - t0, 1),
                                         "motion_loss": total / count})
            total, count = 0.0, 0
        if (step + 1) % 200 == 0 or step + 1 == steps:
            elapsed += time.time() - t0
            t0 = time.time()
            tmp = state_path.with_suffix(".tmp")
            torch.save({"weights": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                        "seconds": elapsed}, tmp)
            tmp.replace(state_path)
    if bar is not None:
        bar.close()
    model.eval().save_pretrained(out)
    summary = {"steps": steps, "seconds": round(elapsed, 1)}
    (out / "done.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
