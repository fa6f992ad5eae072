"""Phone pre-training of the nano audio encoder: 25 Hz frame-wise phone classification of the spoken questions.

Trained only through the LLM's next-token loss, nano's 233 k-parameter encoder learned to hear little: the decoder
learned to answer from priors instead (docs/NANO.md, fourth session: another row's question audio raised the
ASR loss only 0.80 -> 0.96). FLAME-QA-nano knows where every phone of its questions lies (espeak-ng's phone
events, ``meta["question_phones"]``: one phone class per 25 Hz frame, the encoder's own output rate), so the
encoder is first fitted alone: its output frames through a linear head onto those classes (cross-entropy), on
the training voices' questions of FLAME-QA-nano and of the read-aloud corpus. The curriculum then starts the
model's encoder from it (``CurriculumConfig.encoder``) and may keep it frozen (``StageConfig.lr_encoder``).

Augmentation, for the voices training never hears: a random warp of the mel-frequency axis per clip (vocal
tract length, ±``warp``) and one masked band of mel bins (SpecAugment).

    python -m a2llm.train encoder --data data/flame-qa-nano --read-data data/flame-qa-nano-read --out DIR

Writes ``DIR/config.json`` (encoder sizes + these settings), ``DIR/model.safetensors`` (the encoder's tensors
under :class:`~a2llm.lalm.encoder.AudioEncoder`'s names, the head under ``head.``), ``train_log.csv`` and
``val_metrics.json`` (frame accuracy and phone error rate on validation questions and on held-out-voice test
questions) and ``done.json``; a finished folder is not trained again. The run is short (~5 min on 2 cores) and
restarts from the beginning if interrupted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from a2llm.lalm.encoder import AudioEncoder, EncoderConfig, encoder_frames
from a2llm.lalm.frontend import FrontendConfig, LogMelFrontend
from a2llm.train.curriculum import lr_factor
from a2llm.train.log import append_csv

IGNORE = -100


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Settings of the phone pre-training.

    Attributes:
        steps, batch: optimizer steps and clips per step.
        lr: AdamW peak learning rate (linear warm-up over ``warmup`` steps, cosine decay to ``min_lr_ratio`` of it:
            the curriculum's ``lr_factor``).
        warp: mel-frequency warp factors are drawn from [1 - warp, 1 + warp] per clip (0: none).
        freq_mask: widest band of mel bins masked per clip (0: none).
        val_samples: questions per evaluation set.
    """

    steps: int = 1500
    batch: int = 32
    lr: float = 2e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warp: float = 0.1
    freq_mask: int = 16
    seed: int = 0
    log_every: int = 100
    val_samples: int = 256


def nano_encoder_config() -> EncoderConfig:
    """The encoder sizes of A²-LLM-nano (:meth:`BackboneConfig.nano`; they do not depend on the vocabulary)."""
    from a2llm.lalm.backbone import BackboneConfig

    return BackboneConfig.nano(vocab_size=1).encoder


class PhoneEncoder(nn.Module):
    """Log-mel front end, :class:`AudioEncoder` and a linear phone head: 16 kHz audio -> [B, T_enc, phones]."""

    def __init__(self, config: EncoderConfig, num_phones: int):
        super().__init__()
        self.frontend = LogMelFrontend(FrontendConfig(n_mels=config.n_mels))
        self.encoder = AudioEncoder(config)
        self.head = nn.Linear(config.n_audio_state, num_phones)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor,
                augment: tuple[torch.Generator, EncoderTrainConfig] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """audio [B, N], lengths [B] samples -> (logits [B, T_enc, phones], valid frames [B])."""
        mel, mel_lengths = self.frontend(audio, lengths)
        if augment is not None:
            mel = augment_mel(mel, mel_lengths, *augment)
        x, enc_lengths = self.encoder(mel, mel_lengths)
        return self.head(x), enc_lengths


def augment_mel(mel: torch.Tensor, mel_lengths: torch.Tensor, gen: torch.Generator,
                cfg: EncoderTrainConfig) -> torch.Tensor:
    """Per clip: warp the mel-frequency axis by a factor in [1 - warp, 1 + warp] (bin f reads bin f × factor,
    linearly interpolated, clamped at the top) and set one band of up to ``freq_mask`` bins to the clip's
    floor. mel [B, n_mels, T] -> the same shape; frames past a clip's end stay 0."""
    B, n_mels, T = mel.shape
    out = mel
    if cfg.warp:
        factor = 1 + (torch.rand(B, generator=gen) * 2 - 1) * cfg.warp
        pos = (torch.arange(n_mels)[None, :] * factor[:, None]).clamp(max=n_mels - 1)     # [B, n_mels]
        lo = pos.floor().long()
        hi = (lo + 1).clamp(max=n_mels - 1)
        w = (pos - lo)[:, :, None]
        gather = lambda idx: torch.gather(mel, 1, idx[:, :, None].expand(B, n_mels, T))     # noqa: E731
        out = gather(lo) * (1 - w) + gather(hi) * w
    if cfg.freq_mask:
        width = torch.randint(0, cfg.freq_mask + 1, (B,), generator=gen)
        start = (torch.rand(B, generator=gen) * (n_mels - width)).long()
        bins = torch.arange(n_mels)[None, :]
        band = (bins >= start[:, None]) & (bins < (start + width)[:, None])                 # [B, n_mels]
        floor = out.masked_fill(out == 0, float("inf")).amin(dim=(1, 2), keepdim=True)
        out = torch.where(band[:, :, None], floor, out)
    valid = torch.arange(T)[None, :] < mel_lengths[:, None]
    return out * valid[:, None, :]


# --- data ------------------------------------------------------------------------------------------------------
def question_clips(root: str | Path, split: str, holdout: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(question audio [N] at 16 kHz, 25 Hz phone classes [T]) of a split's samples (with ``holdout``: only
    those with that ``meta.holdout``)."""
    from a2llm.data import load_flame_qa

    ds = load_flame_qa(root, split=split)
    clips = []
    for i in range(len(ds)):
        rec = ds.record(i)
        if holdout is not None and rec["meta"].get("holdout") != holdout:
            continue
        if "question_phones" not in rec["meta"]:
            raise ValueError(f"{root} ({split}) sample {rec['id']} has no meta.question_phones: the corpus predates "
                             f"the encoder's phone labels; regenerate it (python -m a2llm.data.nano --out ...)")
        s = ds[i]
        if s.question_audio is None:
            continue
        if s.sample_rate != 16000:
            raise ValueError(f"sample {s.id} is at {s.sample_rate} Hz; the encoder's front end takes 16 kHz")
        clips.append((s.question_audio.astype(np.float32), np.asarray(rec["meta"]["question_phones"], np.int64)))
    return clips


def collate_clips(clips: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> audio [B, N] (zero-padded), lengths [B], labels [B, T_enc] (IGNORE past each clip's frames)."""
    lengths = torch.tensor([len(a) for a, _ in clips])
    audio = torch.zeros(len(clips), int(lengths.max()))
    mel_frames = (lengths + FrontendConfig().pad_samples) // FrontendConfig().hop_length
    enc = encoder_frames(mel_frames)
    labels = torch.full((len(clips), int(enc.max())), IGNORE, dtype=torch.long)
    for b, (a, phones) in enumerate(clips):
        audio[b, :len(a)] = torch.from_numpy(a)
        n = min(int(enc[b]), len(phones))       # the two frame counts round differently by at most one
        labels[b, :n] = torch.from_numpy(phones[:n])
    return audio, lengths, labels


# --- training --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: PhoneEncoder, clips, batch: int = 32) -> dict[str, float]:
    """Frame accuracy and mean phone error rate (collapsed greedy frames vs collapsed labels) of ``clips``."""
    from a2llm.data.phones import collapse, edit_distance

    was = model.training
    model.eval()
    right = total = 0
    pers = []
    for i in range(0, len(clips), batch):
        audio, lengths, labels = collate_clips(clips[i:i + batch])
        logits, _ = model(audio, lengths)
        pred = logits.argmax(-1)[:, :labels.shape[1]]
        mask = labels != IGNORE
        right += int((pred[mask] == labels[mask]).sum())
        total += int(mask.sum())
        for p, lab, m in zip(pred, labels, mask):
            ref = collapse(lab[m].tolist())
            if ref:
                pers.append(edit_distance(collapse(p[m].tolist()), ref) / len(ref))
    model.train(was)
    return {"frame_accuracy": right / max(1, total), "per": float(np.mean(pers)) if pers else math.nan}


def train_encoder(data: str | Path, out: str | Path, read_data: str | Path | None = None,
                  cfg: EncoderTrainConfig = EncoderTrainConfig(), progress: bool = True) -> dict:
    """Fit the nano encoder + phone head on the question audio of ``data`` (train split) and ``read_data``;
    save into ``out`` and return the validation metrics (a finished ``out`` is returned as it is)."""
    from safetensors.torch import save_file

    from a2llm.data.phones import PHONES

    out = Path(out)
    if (out / "done.json").exists():
        return json.loads((out / "val_metrics.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_log.csv").unlink(missing_ok=True)
    train = question_clips(data, "train") + (question_clips(read_data, "train") if read_data else [])
    if not train:
        raise ValueError(f"{data} has no training questions with audio")
    rng = np.random.default_rng(cfg.seed)
    val_sets = {name: [clips[int(i)] for i in rng.permutation(len(clips))[:cfg.val_samples]]
                for name, clips in (("val", question_clips(data, "val")),
                                    ("test_held_out_voices", question_clips(data, "test", holdout="voice")))}
    enc_cfg = nano_encoder_config()
    torch.manual_seed(cfg.seed)
    model = PhoneEncoder(enc_cfg, len(PHONES))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, sums, count = time.time(), 0.0, 0
    bar = tqdm(range(cfg.steps), desc="encoder phones", unit="step", disable=not progress)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(step, cfg)      # reads warmup, steps, min_lr_ratio
        audio, lengths, labels = collate_clips([train[int(i)] for i in rng.integers(0, len(train), cfg.batch)])
        logits, _ = model(audio, lengths, augment=(gen, cfg))
        loss = F.cross_entropy(logits[:, :labels.shape[1]].flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sums, count = sums + loss.item(), count + 1
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            row = {"step": step + 1, "seconds": round(time.time() - t0, 1), "loss": sums / count,
                   **{f"{k}_frame_accuracy": v["frame_accuracy"]
                      for k, v in ((k, evaluate(model, c[:32])) for k, c in val_sets.items())}}
            append_csv(out / "train_log.csv", row)
            sums, count = 0.0, 0
    seconds = time.time() - t0
    metrics = {name: evaluate(model, clips) for name, clips in val_sets.items()}
    metrics["seconds"] = round(seconds, 1)
    metrics["train_clips"] = len(train)
    state = {k: v.contiguous() for k, v in model.encoder.state_dict().items()}
    state.update({f"head.{k}": v.contiguous() for k, v in model.head.state_dict().items()})
    save_file(state, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps({"component": "phone-encoder", "encoder": dataclasses.asdict(enc_cfg),
                                                 "num_phones": len(PHONES), "train": dataclasses.asdict(cfg)},
                                                indent=2) + "\n")
    (out / "val_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "done.json").write_text(json.dumps({"steps": cfg.steps, "seconds": round(seconds, 1)}) + "\n")
    return metrics


def load_encoder_weights(encoder: AudioEncoder, folder: str | Path) -> None:
    """Copy a phone pre-trained encoder (``train_encoder``'s folder) into ``encoder`` (sizes must match)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"no phone pre-trained encoder in {folder} (make one: python -m a2llm.train encoder "
                                f"--data DATA --out {folder})")
    saved = EncoderConfig(**json.loads((folder / "config.json").read_text())["encoder"])
    if saved != encoder.config:
        raise ValueError(f"{folder} holds an encoder of sizes {saved}, the model's is {encoder.config}")
    state = {k: v for k, v in load_file(str(folder / "model.safetensors")).items() if not k.startswith("head.")}
    encoder.load_state_dict(state, strict=True)
