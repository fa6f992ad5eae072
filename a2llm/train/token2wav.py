"""Train the nano token2wav (phone-frame tokens -> log-mel) on a FLAME-QA folder.

Each sample's ``audio_tokens`` [T] (25 Hz) and ``response_audio`` (16 kHz, trimmed or zero-padded to T tokens'
worth of samples) give a target log-mel [80, 4 T]; the network is fitted with a masked L1 on log-mel (AdamW),
whole utterances per batch (padding behaves like the utterance's end, see ``Token2Mel.forward``). After each
epoch it is validated (log-mel L1 and the correlation of frame energy envelopes), a resumable state is written
to ``OUT/train_state.pt`` (weights and optimizer, loaded with ``weights_only=True``) and a row to
``OUT/train_log.csv``; calling again with the same settings resumes after the last finished epoch (``epochs``
may grow). The result is saved Hugging Face style (``config.json`` + ``model.safetensors``, component
"token2wav") with ``val_metrics.json``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from a2llm.data import load_flame_qa
from a2llm.lalm.nano_token2wav import NanoToken2Wav, NanoToken2WavConfig, Token2Mel
from a2llm.train.log import append_csv


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    max_train_samples: int = 0     # 0: the whole train split (a prefix otherwise, for quick runs)
    max_val_samples: int = 200


class _Features:
    """(tokens [T], log-mel [n_mels, 4 T]) per sample of one split, computed once and kept (float16 mel)."""

    def __init__(self, root: Path, split: str, limit: int, detok: NanoToken2Wav):
        self.ds = load_flame_qa(root, split=split)
        self.n = min(len(self.ds), limit) if limit else len(self.ds)
        self.detok = detok
        self.cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i not in self.cache:
            s = self.ds[i]
            if s.audio_tokens is None:
                raise ValueError(f"sample {s.id} has no audio_tokens: token2wav needs the 25 Hz phone frames")
            tokens = torch.from_numpy(self.detok.check_tokens(s.audio_tokens))
            if s.sample_rate != self.detok.sample_rate:
                raise ValueError(f"sample {s.id} is at {s.sample_rate} Hz, the token2wav expects "
                                 f"{self.detok.sample_rate} Hz")
            audio = np.zeros(self.detok.num_samples(len(tokens)), np.float32)   # token k <-> [k/25, (k+1)/25) s
            n = min(len(audio), len(s.response_audio))
            audio[:n] = s.response_audio[:n]
            mel = self.detok.log_mel(torch.from_numpy(audio))
            self.cache[i] = (tokens, mel.half())
        return self.cache[i]


def _batch(items: list[tuple[torch.Tensor, torch.Tensor]], frames_per_token: int):
    """Pad to the longest: tokens [B, N], token mask [B, N], target log-mel [B, n_mels, F], frame mask [B, F]."""
    n = max(len(t) for t, _ in items)
    tokens = torch.zeros(len(items), n, dtype=torch.long)
    mask = torch.zeros(len(items), n)
    mels = torch.zeros(len(items), items[0][1].shape[0], n * frames_per_token)
    for b, (t, m) in enumerate(items):
        tokens[b, :len(t)], mask[b, :len(t)] = t, 1
        mels[b, :, :m.shape[1]] = m.float()
    return tokens, mask, mels, mask.repeat_interleave(frames_per_token, 1)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over real frames and all mel bins: [B, n_mels, F] x2, [B, F] -> scalar."""
    m = frame_mask[:, None, :]
    return ((pred - target).abs() * m).sum() / (m.sum() * pred.shape[1]).clamp_min(1)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


@torch.no_grad()
def evaluate(model: Token2Mel, feats: _Features, batch: int) -> dict:
    """Validation log-mel L1 and the mean per-utterance correlation of frame energy envelopes (mean log-mel)."""
    model.eval()
    total, frames, corr = 0.0, 0.0, []
    fpt = model.cfg.frames_per_token
    for b in range(0, len(feats), batch):
        items = [feats[i] for i in range(b, min(b + batch, len(feats)))]
        tokens, mask, target, fmask = _batch(items, fpt)
        pred = model(tokens, mask)
        n = float(fmask.sum())
        total += float(masked_l1(pred, target, fmask)) * n
        frames += n
        for k, (t, _) in enumerate(items):
            f = len(t) * fpt
            c = _pearson(pred[k, :, :f].mean(0).numpy(), target[k, :, :f].mean(0).numpy())
            if not math.isnan(c):
                corr.append(c)
    return {"val_l1": total / max(frames, 1), "val_envelope_corr": float(np.mean(corr)) if corr else float("nan")}


def _init_output_bias(model: Token2Mel, feats: _Features, n: int = 64) -> None:
    """Start the output at the data's mean log-mel per bin, so early steps learn shape, not offset."""
    mels = torch.cat([feats[i][1].float() for i in range(min(n, len(feats)))], dim=1)
    with torch.no_grad():
        model.proj.bias.copy_(mels.mean(1))


def train_token2wav(data_dir: str | Path, out_dir: str | Path, cfg: TrainConfig = TrainConfig(),
                    progress: bool = True, model_cfg: NanoToken2WavConfig | None = None) -> dict:
    """Train (or resume) the nano token2wav on ``data_dir`` and save it into ``out_dir``.

    Returns:
        The last epoch's metrics: ``val_l1``, ``val_envelope_corr``, ``train_l1``, ``epoch``, ``step``.
    """
    data, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = model_cfg or NanoToken2WavConfig()
    torch.manual_seed(cfg.seed)
    model = Token2Mel(model_cfg)
    detok = NanoToken2Wav(model)             # its analysis (log_mel) defines the targets
    train = _Features(data, "train", cfg.max_train_samples, detok)
    val = _Features(data, "val", cfg.max_val_samples, detok)
    if not len(train) or not len(val):
        raise ValueError(f"{data} needs non-empty train and val splits (has {len(train)} and {len(val)})")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state_path, log_path = out / "train_state.pt", out / "train_log.csv"
    start_epoch, step = 0, 0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        _check_same(state, cfg, model_cfg, state_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"], state["step"]
        torch.set_rng_state(state["torch_rng"])
        if progress:
            print(f"resuming from epoch {start_epoch} ({state_path})")
    else:
        _init_output_bias(model, train)
    metrics: dict = {}
    steps_per_epoch = math.ceil(len(train) / cfg.batch)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(train))   # epoch e's order: e only
        t0, loss_sum = time.perf_counter(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"token2wav epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        for b in bar:
            tokens, mask, target, fmask = _batch([train[i] for i in order[b * cfg.batch:(b + 1) * cfg.batch]],
                                                 model_cfg.frames_per_token)
            loss = masked_l1(model(tokens, mask), target, fmask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            loss_sum += float(loss.detach())
            bar.set_postfix(l1=f"{float(loss.detach()):.3f}")
        metrics = {"epoch": epoch + 1, "step": step, "seconds": round(time.perf_counter() - t0, 1),
                   "train_l1": loss_sum / steps_per_epoch, **evaluate(model, val, cfg.batch)}
        append_csv(log_path, metrics)
        if progress:
            print(f"epoch {epoch + 1}: train L1 {metrics['train_l1']:.4f} | val L1 {metrics['val_l1']:.4f}, "
                  f"envelope corr {metrics['val_envelope_corr']:.3f}")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "step": step,
                    "torch_rng": torch.get_rng_state(), "train_config": asdict(cfg),
                    "model_config": asdict(model_cfg)}, state_path)
    if not metrics:        # nothing left to train: report the saved model as it is
        metrics = {"epoch": start_epoch, "step": step, **evaluate(model, val, cfg.batch)}
    NanoToken2Wav(model.eval()).save_pretrained(out)
    (out / "val_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


#: Settings of the Griffin-Lim decode only: the trained network does not depend on them, so a run may resume
#: (or re-save its finished model) with new values.
DECODE_ONLY = ("gl_iters", "gl_momentum", "overlap_tokens", "crossfade", "nnls_iters")


def _check_same(state: dict, cfg: TrainConfig, model_cfg: NanoToken2WavConfig, path: Path) -> None:
    saved = {k: v for k, v in state["train_config"].items() if k != "epochs"}
    trained = {k: v for k, v in state["model_config"].items() if k not in DECODE_ONLY}
    if saved != {k: v for k, v in asdict(cfg).items() if k != "epochs"} or \
            trained != {k: v for k, v in asdict(model_cfg).items() if k not in DECODE_ONLY}:
        raise ValueError(f"{path} was written with other settings (train {state['train_config']}, model "
                         f"{state['model_config']}); use the same ones (only epochs may grow) or remove it")
