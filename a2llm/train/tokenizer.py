"""Train the residual motion tokenizer on a FLAME-QA folder.

    python -m a2llm.train tokenizer --data DIR --out DIR [--config configs/full/tokenizer.json] [--epochs 30] ...

Each epoch draws one random 40-frame window from every training clip; after each epoch the model is
validated on whole validation clips (param MSE, MOD of the reconstruction, temporal correlation, upper-face
jitter, per-level codebook usage and perplexity), a resumable state is written to ``OUT/train_state.pt`` and the
log to ``OUT/train_log.csv``. Re-running the same command resumes from the last finished epoch. The result is
saved Hugging Face style (``config.json`` + ``model.safetensors``) with a curve plot ``curves.png`` and the
settings it was trained with, ``train_config.json`` (the ``--config`` format).

The loss is the paper's Eq. 7-10 (:mod:`a2llm.motion.losses`); its weights are ``TrainConfig.loss``.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from a2llm.data import load_flame_qa
from a2llm.eval.metrics import mouth_opening, pearson, upper_face_displacement
from a2llm.head import load_head
from a2llm.motion.losses import LossWeights, MotionLoss
from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
from a2llm.motion.tokenizer import MotionTokenizer
from a2llm.train.log import append_csv


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch: int = 32
    window: int = 40          # frames per training window (a multiple of the token group)
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    max_val_clips: int = 300
    loss: LossWeights = LossWeights()
    init: str | None = None       # start from this trained tokenizer (folder) instead of from scratch
    decoder_only: bool = False    # train the decoder alone (encoder, codebooks and normalisation frozen: the codes
                                  # of every clip stay what they were, so models trained on them stay valid)


#: The loss of training states written before ``TrainConfig.loss`` existed: parameter-space velocity and
#: acceleration at 1e2, no vertex-space ones (a resumed run must keep the loss it started with).
LEGACY_LOSS = asdict(LossWeights(dynamics=0.0, param_dynamics=1e2))


@dataclass(frozen=True)
class TokenizerConfig:
    """A tokenizer config file: training settings and model hyper-parameters.

    JSON: ``{"train": {TrainConfig fields, "loss": {LossWeights fields}}, "model": {RVQConfig fields}}``; every
    section and field may be left out (the dataclass default), a ``"description"`` string is allowed.
    """

    train: TrainConfig = TrainConfig()
    model: RVQConfig = RVQConfig()


def _from_dict(cls, raw: dict, where: str):
    """``cls(**raw)`` with unknown keys refused by name (lists become tuples, as the frozen configs hold)."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} for {cls.__name__} (known: {sorted(names)})")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def load_tokenizer_config(path: str | Path) -> TokenizerConfig:
    """Read a tokenizer config JSON (configs/full/tokenizer.json; a trained folder's train_config.json)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no tokenizer config at {path} (see configs/full/tokenizer.json for the format)")
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object")
    raw.pop("description", None)
    unknown = set(raw) - {"train", "model"}
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)} (known: 'train', 'model', 'description')")
    train = dict(raw.get("train", {}))
    loss = _from_dict(LossWeights, train.pop("loss", {}), f"{path} train.loss")
    return TokenizerConfig(train=replace(_from_dict(TrainConfig, train, f"{path} train"), loss=loss),
                           model=_from_dict(RVQConfig, raw.get("model", {}), f"{path} model"))


def save_tokenizer_config(cfg: TokenizerConfig, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps({"train": asdict(cfg.train), "model": asdict(cfg.model)}, indent=2) + "\n")
    return path


def load_motions(root: Path, split: str) -> list[np.ndarray]:
    ds = load_flame_qa(root, split=split)
    return [ds.motion(i) for i in tqdm(range(len(ds)), desc=f"load {split}", unit="clip", leave=False)]


def _windows(clips: list[np.ndarray], order: np.ndarray, rng: np.random.Generator, window: int):
    """[B, window, 58] windows and [B, window] masks (short clips are padded with their last frame)."""
    batch, masks = [], []
    for i in order:
        m = clips[i]
        if len(m) >= window:
            s = rng.integers(0, len(m) - window + 1)
            batch.append(m[s:s + window])
            masks.append(np.ones(window, np.float32))
        else:
            pad = np.repeat(m[-1:], window - len(m), 0)
            batch.append(np.concatenate([m, pad]))
            masks.append(np.concatenate([np.ones(len(m)), np.zeros(window - len(m))]).astype(np.float32))
    return torch.from_numpy(np.stack(batch)), torch.from_numpy(np.stack(masks))


def codebook_stats(indices: np.ndarray, codebook_size: int) -> tuple[list[float], list[float]]:
    """Per-level fraction of codes used and perplexity, from indices [N, Nq]."""
    usage, ppl = [], []
    for q in range(indices.shape[1]):
        counts = np.bincount(indices[:, q], minlength=codebook_size).astype(float)
        p = counts / counts.sum()
        usage.append(float((counts > 0).mean()))
        ppl.append(float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())))
    return usage, ppl


def evaluate_reconstruction(tok: MotionTokenizer, clips: list[np.ndarray], head) -> dict:
    """Reconstruct whole clips through encode -> decode and score them (metres -> mm for MOD).

    ``upper_face_jitter`` is the metrics' upper-face jitter (a2llm.eval.metrics: mean |Δ²| of the upper-face
    vertices' displacement from the neutral head) pooled over all clips, reconstruction over ground truth:
    1 = as smooth as the truth, > 1 = jitter the truth does not have.
    """
    mse, mod, corr, all_idx = [], [], [], []
    jitter_rec = jitter_true = 0.0
    for m in clips:
        codes = tok.encode(m)
        rec = tok.decode(codes)[: len(m)]
        all_idx.append(codes)
        mse.append(float(np.mean((rec - m) ** 2)))
        v_true, v_rec = head.vertices(m, canonical=True), head.vertices(rec, canonical=True)
        o_true, o_rec = mouth_opening(v_true, head), mouth_opening(v_rec, head)
        mod.append(1000 * float(np.mean(np.abs(o_rec - o_true))))
        c = pearson(o_rec, o_true)
        if not math.isnan(c):
            corr.append(c)
        jitter_rec += float(np.abs(np.diff(upper_face_displacement(v_rec, head), n=2, axis=0)).sum())
        jitter_true += float(np.abs(np.diff(upper_face_displacement(v_true, head), n=2, axis=0)).sum())
    usage, ppl = codebook_stats(np.concatenate(all_idx), tok.cardinality)
    return {"param_mse": float(np.mean(mse)), "mod_mm": float(np.mean(mod)), "temporal_corr": float(np.mean(corr)),
            "upper_face_jitter": jitter_rec / jitter_true if jitter_true > 0 else math.nan,
            "usage": usage, "perplexity": ppl}


def _normalization(clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    allm = np.concatenate(clips)
    return torch.from_numpy(allm.mean(0)), torch.from_numpy(allm.std(0))


def train_tokenizer(data: str | Path, out: str | Path, cfg: TrainConfig = TrainConfig(),
                    model_cfg: RVQConfig = RVQConfig(), progress: bool = True) -> dict:
    """Train (or resume) and save the tokenizer into ``out``; returns the final validation metrics."""
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = load_head(model_cfg.head)
    train = load_motions(data, "train")
    val = load_motions(data, "val")[: cfg.max_val_clips]
    if not train or not val:
        raise ValueError(f"{data} needs non-empty train and val splits")
    if cfg.decoder_only and not cfg.init:
        raise ValueError("decoder_only fine-tunes a trained tokenizer's decoder: give init (its folder)")
    if cfg.init:
        model = MotionTokenizer.from_pretrained(cfg.init).model
        differ = {k for k, v in asdict(model.cfg).items() if asdict(model_cfg)[k] != v}
        if differ == {"upsample"} and cfg.decoder_only:
            # A new decoder front on the same codes (e.g. "repeat" -> "lerp": the same convolution's weights).
            state = model.state_dict()
            model = MotionRVQVAE(model_cfg)
            try:
                model.load_state_dict(state)
            except RuntimeError as e:
                raise ValueError(f"{cfg.init}'s decoder cannot start a {model_cfg.upsample!r} one: {e}") from e
        elif differ:
            raise ValueError(f"{cfg.init} holds a tokenizer with other hyper-parameters ({sorted(differ)} differ); "
                             "give its own (its train_config.json; with decoder_only, only upsample may change)")
    else:
        model = MotionRVQVAE(model_cfg)
        model.set_normalization(*_normalization(train))
    frozen = (model.encoder, model.quantizer) if cfg.decoder_only else ()
    for part in frozen:
        part.requires_grad_(False)
    loss_fn = MotionLoss(head, cfg.loss)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    state_path, log_path = out / "train_state.pt", out / "train_log.csv"
    start_epoch, step = 0, 0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        saved = {k: v for k, v in state["train_config"].items() if k != "epochs"}
        saved.setdefault("loss", LEGACY_LOSS)
        # Settings added since a state was written take their defaults (what that run trained with).
        saved = {**{k: v for k, v in asdict(TrainConfig()).items() if k != "epochs"}, **saved}
        saved["loss"] = {**asdict(LossWeights()), **saved["loss"]}
        if saved != {k: v for k, v in asdict(cfg).items() if k != "epochs"}:
            if state["epoch"] < cfg.epochs:
                raise ValueError(f"{state_path} was written with other training settings ({saved}); "
                                 "use the same ones (only --epochs may grow) or remove it to start over")
            # A finished run re-run (a pipeline re-run) trains nothing: it is scored again, under its own settings.
            print(f"note: {state_path} finished with other training settings; it is scored as it is")
            loss = LossWeights(**saved.pop("loss"))
            cfg = replace(_from_dict(TrainConfig, {**saved, "epochs": state["epoch"]}, str(state_path)), loss=loss)
        if state.get("model_config", asdict(model_cfg)) != asdict(model_cfg):
            raise ValueError(f"{state_path} holds a model with other hyper-parameters ({state['model_config']}); "
                             "use the same ones or remove it to start over")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"], state["step"]
        torch.set_rng_state(state["torch_rng"])
        rng = np.random.default_rng(cfg.seed + start_epoch)
        print(f"resuming from epoch {start_epoch} ({state_path})")
    steps_per_epoch = math.ceil(len(train) / cfg.batch)
    metrics: dict = {}
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        for part in frozen:                  # no dropout, no EMA codebook updates: the codes stay as they were
            part.eval()
        perm = rng.permutation(len(train))
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for b in bar:
            x, mask = _windows(train, perm[b * cfg.batch:(b + 1) * cfg.batch], rng, cfg.window)
            out_ = model(x)
            terms = loss_fn(out_.recon, x, mask)
            loss = terms["total"] + (0.0 if frozen else out_.commit_loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            for k, v in {**terms, "commit": out_.commit_loss}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        model.eval()
        metrics = evaluate_reconstruction(MotionTokenizer(model), val, head)
        row = {"epoch": epoch + 1, "step": step, "seconds": round(time.perf_counter() - t0, 1),
               **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()},
               "val_param_mse": metrics["param_mse"], "val_mod_mm": metrics["mod_mm"],
               "val_temporal_corr": metrics["temporal_corr"], "val_upper_face_jitter": metrics["upper_face_jitter"],
               "val_min_usage": min(metrics["usage"]),
               "val_mean_perplexity": float(np.mean(metrics["perplexity"]))}
        append_csv(log_path, row)
        print(f"epoch {epoch + 1}: loss {row['train_total']:.4f} | val MOD {metrics['mod_mm']:.3f} mm, "
              f"corr {metrics['temporal_corr']:.4f}, min usage {min(metrics['usage']):.2f}")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1, "step": step,
                    "torch_rng": torch.get_rng_state(), "train_config": asdict(cfg),
                    "model_config": asdict(model_cfg)}, state_path)
        rng = np.random.default_rng(cfg.seed + epoch + 1)   # resumable: epoch e's stream depends on e only
    tok = MotionTokenizer(model.eval())
    if not metrics:               # resumed after its last epoch: nothing trained, the saved model is scored again
        metrics = evaluate_reconstruction(tok, val, head)
    tok.save_pretrained(out)
    save_tokenizer_config(TokenizerConfig(cfg, model_cfg), out / "train_config.json")
    (out / "val_metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_curves(log_path, out / "curves.png")
    return metrics


def plot_curves(log_path: Path, out_png: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    ep = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(11, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    panels = [("train_total", "train loss (Eq. 7-10)", True), ("val_mod_mm", "val MOD (mm)", False),
              ("val_temporal_corr", "val temporal corr", False), ("val_min_usage", "val min codebook usage", False)]
    for k, (key, title, log) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.plot(ep, [float(r[key]) for r in rows], marker=".")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png)
    return out_png


def with_overrides(cfg: TrainConfig, **kw) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
