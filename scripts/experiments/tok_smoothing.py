"""Vertex-space velocity/acceleration only vs. vertex-space + parameter-space smoothing (docs/TOKENIZER.md,
"Vertex-space smoothing").

Trains the nano tokenizer (RVQConfig defaults, TrainConfig defaults but the epochs) once per variant on the same
FLAME-QA folder, one after the other: the loss of Eq. 7-10 with the parameter-space velocity + acceleration
weighted by each of ``--param-dynamics`` (0: vertex space only, Eq. 10 as the paper has it), then scores each on
the held-out test split with
``evaluate_reconstruction`` (MOD, temporal correlation, parameter MSE, upper-face jitter, codebook usage) and
draws their validation curves and test figures into one PNG.

    OMP_NUM_THREADS=1 .venv/bin/python -m a2llm.data.nano --out /tmp/tokdata --num 800 --workers 1
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python scripts/experiments/tok_smoothing.py --data /tmp/tokdata \
        --work /tmp/tok_smoothing --epochs 10 --param-dynamics 0 100 10 --png docs/tokenizer_smoothing.png

Each variant's folder (WORK/pdW) resumes like ``python -m a2llm.train tokenizer``; results go to
WORK/results.json.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from a2llm.head import load_head
from a2llm.motion.losses import LossWeights
from a2llm.motion.rvq import RVQConfig
from a2llm.motion.tokenizer import MotionTokenizer
from a2llm.train.tokenizer import TrainConfig, evaluate_reconstruction, load_motions, train_tokenizer

def label(w: float) -> str:
    return "vertex-space vel/acc only (Eq. 10)" if w == 0 else f"+ parameter-space vel/acc × {w:g}"


def plot(work: Path, results: dict, png: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    panels = [("val_mod_mm", "val MOD (mm) ↓"), ("val_upper_face_jitter", "val upper-face jitter (1 = truth)"),
              ("train_vel", "train L_vel, full mesh (m²)")]
    for k, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels) + 1, k + 1)
        for name, res in results.items():
            rows = list(csv.DictReader(open(work / name / "train_log.csv")))
            ax.plot([int(row["epoch"]) for row in rows], [float(row[key]) for row in rows], marker=".",
                    label=label(res["loss"]["param_dynamics"]))
        if key == "val_upper_face_jitter":
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        if key.startswith("train_"):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    ax = fig.add_subplot(1, len(panels) + 1, len(panels) + 1)
    keys = [("mod_mm", "MOD mm"), ("upper_face_jitter", "UF jitter"), ("temporal_corr", "corr")]
    x, width = np.arange(len(keys)), 0.8 / len(results)
    for i, (name, r) in enumerate(results.items()):
        bars = ax.bar(x + (i - (len(results) - 1) / 2) * width, [r["test"][k] for k, _ in keys], width,
                      label=f"param × {r['loss']['param_dynamics']:g}")
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(x, [t for _, t in keys], fontsize=8)
    ax.set_title(f"held-out test split ({next(iter(results.values()))['test_clips']} clips)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="FLAME-QA folder (python -m a2llm.data.nano)")
    ap.add_argument("--work", required=True, help="folder for the two runs and results.json")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--param-dynamics", type=float, nargs="+", default=[0.0, 1e2],
                    help="weights of the parameter-space vel/acc, one variant each (0: off; 1e2: the old default)")
    ap.add_argument("--png", default="docs/tokenizer_smoothing.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    test = load_motions(Path(args.data), "test")
    results: dict = {}
    for w in args.param_dynamics:
        name = f"pd{w:g}"
        cfg = TrainConfig(epochs=args.epochs, seed=args.seed, loss=LossWeights(param_dynamics=w))
        val = train_tokenizer(args.data, work / name, cfg, RVQConfig(), progress=False)
        # epoch seconds (training + validation) from the log: a resumed, finished run trains nothing again
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(open(work / name / "train_log.csv")))
        tok = MotionTokenizer.from_pretrained(work / name)
        m = evaluate_reconstruction(tok, test, load_head(tok.config.head))
        results[name] = {"loss": cfg.loss.__dict__, "epochs": args.epochs, "train_s": round(seconds, 1),
                         "val": val, "test": m, "test_clips": len(test)}
        print(f"{name}: {seconds:.0f} s; test MOD {m['mod_mm']:.4f} mm, corr {m['temporal_corr']:.4f}, "
              f"param MSE {m['param_mse']:.5f}, UF jitter {m['upper_face_jitter']:.3f}, "
              f"min usage {min(m['usage']):.2f}", flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| variant | test MOD (mm) | temporal corr | param MSE | upper-face jitter | min usage | "
          "val MOD (mm) | val UF jitter |\n|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        t, v = r["test"], r["val"]
        print(f"| {label(r['loss']['param_dynamics'])} | {t['mod_mm']:.4f} | {t['temporal_corr']:.4f} | {t['param_mse']:.5f} | "
              f"{t['upper_face_jitter']:.3f} | {min(t['usage']):.2f} | {v['mod_mm']:.4f} | "
              f"{v['upper_face_jitter']:.3f} |")
    plot(work, results, Path(args.png))
    print(f"wrote {work / 'results.json'} and {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
