"""A²-LLM-nano end to end, one command: corpus, token2wav, motion tokenizer, curriculum, baselines, checkpoint.

    python -m a2llm.train nano                      # configs/nano/nano.json -> checkpoints/a2llm-nano

Steps (each resumable, each skipped once done, so re-running the command continues an interrupted run):

1. FLAME-QA-nano into ``data`` and the read-aloud corpus into ``read_data`` (when the folders do not exist).
2. nano token2wav (``WORK/token2wav``), the RVQ-VAE motion tokenizer (``WORK/rvq``), its decoder alone
   fine-tuned into ``WORK/rvq-smooth`` (``rvq_smooth_config``, e.g. a gliding upsampling; the codes, and so the
   curriculum's targets, stay those of ``WORK/rvq``; the checkpoint ships this decoder; skipped with
   ``rvq_smooth_epochs`` 0) and the phone pre-trained audio encoder (``WORK/encoder``, a2llm/train/encoder.py;
   skipped with ``encoder_steps`` 0).
3. the curriculum (configs/nano/curriculum.json) on ``processes`` CPU processes through torchrun (gloo): on
   two cores two single-threaded processes train ~1.4x faster than one two-threaded one.
4. the audio-only baseline (``WORK/audio-only``); the adapter-only baseline is a curriculum stage.
5. the checkpoint folder ``out``: the final stage's parts, token2wav, baselines/, training/ (logs, curves,
   times of every step: ``training/summary.json``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from a2llm.checkpoint import MANIFEST


@dataclass(frozen=True)
class NanoConfig:
    data: str = "data/flame-qa-nano"
    num_samples: int = 6000
    read_data: str = "data/flame-qa-nano-read"
    read_samples: int = 5000
    work: str = "runs/nano"
    out: str = "checkpoints/a2llm-nano"
    curriculum: str = "configs/nano/curriculum.json"
    token2wav_epochs: int = 8
    rvq_epochs: int = 8
    rvq_config: str = "configs/nano/tokenizer.json"
    rvq_smooth_epochs: int = 0
    rvq_smooth_config: str = ""
    audio_only_steps: int = 500
    encoder_steps: int = 1500
    processes: int = 2

    def __post_init__(self):
        if self.rvq_smooth_epochs and not self.rvq_smooth_config:     # checked before hours of training, not after
            raise ValueError("rvq_smooth_epochs > 0 needs rvq_smooth_config (e.g. configs/nano/tokenizer-smooth.json)")


def load_nano_config(path: str | Path, **overrides) -> NanoConfig:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no nano config at {path}")
    raw = json.loads(path.read_text())
    raw.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(raw) - {f.name for f in fields(NanoConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    return NanoConfig(**raw)


def _run(cmd: list[str], env: dict | None = None) -> float:
    """Run a step as a subprocess (its own progress bars), raise on failure, return its wall time."""
    print("$", " ".join(cmd), flush=True)
    t = time.time()
    result = subprocess.run(cmd, env={**os.environ, **(env or {})})
    if result.returncode:
        raise RuntimeError(f"step failed (exit {result.returncode}): {' '.join(cmd)}")
    return time.time() - t


def _log_seconds(path: Path, column: str = "seconds") -> float:
    """Sum of an epoch log's per-epoch seconds (the training time a resumed run really spent)."""
    import csv

    if not path.exists():
        return 0.0
    return sum(float(r[column]) for r in csv.DictReader(open(path)))


def _finished(folder: Path, epochs: int) -> bool:
    """An epoch-trained part (token2wav, RVQ) that is done: its weights and a log row for its last epoch. Checked
    here rather than by its trainer (which would load ``train_state.pt`` and score it again), so a finished part
    needs only its weights and logs to be skipped: the run's folder can travel between machines without the
    optimizer states (docs/NANO.md, "Resuming on another machine")."""
    import csv

    log = folder / "train_log.csv"
    if not (folder / "model.safetensors").exists() or not log.exists():
        return False
    return any(int(r["epoch"]) >= epochs for r in csv.DictReader(open(log)))


def run_nano(cfg: NanoConfig, quiet: bool = False) -> Path:
    py, work, out = sys.executable, Path(cfg.work), Path(cfg.out)
    work.mkdir(parents=True, exist_ok=True)
    q = ["--quiet"] if quiet else []
    wall = {}
    if not (Path(cfg.data) / "dataset.json").exists():
        wall["data"] = _run([py, "-m", "a2llm.data.nano", "--out", cfg.data, "--num", str(cfg.num_samples)])
    if cfg.read_data:     # always called: it skips the samples already written (a partial folder is continued)
        wall["read_data"] = _run([py, "-m", "a2llm.data.nano", "--read", "--out", cfg.read_data, "--num",
                                  str(cfg.read_samples)])
    if not _finished(work / "token2wav", cfg.token2wav_epochs):
        wall["token2wav"] = _run([py, "-m", "a2llm.train", "token2wav", "--data", cfg.data, "--out",
                                  str(work / "token2wav"), "--epochs", str(cfg.token2wav_epochs)] + q)
    if not _finished(work / "rvq", cfg.rvq_epochs):
        wall["rvq"] = _run([py, "-m", "a2llm.train", "tokenizer", "--data", cfg.data, "--out", str(work / "rvq"),
                            "--epochs", str(cfg.rvq_epochs)]
                           + (["--config", cfg.rvq_config] if cfg.rvq_config else []) + q)
    if cfg.rvq_smooth_epochs and not _finished(work / "rvq-smooth", cfg.rvq_smooth_epochs):
        wall["rvq-smooth"] = _run([py, "-m", "a2llm.train", "tokenizer", "--data", cfg.data, "--init",
                                   str(work / "rvq"), "--decoder-only", "--config", cfg.rvq_smooth_config,
                                   "--out", str(work / "rvq-smooth"), "--epochs", str(cfg.rvq_smooth_epochs)] + q)
    encoder = []
    if cfg.encoder_steps:
        wall["encoder"] = _run([py, "-m", "a2llm.train", "encoder", "--data", cfg.data, "--read-data", cfg.read_data,
                                "--out", str(work / "encoder"), "--steps", str(cfg.encoder_steps)] + q)
        encoder = ["--encoder", str(work / "encoder")]
    launch = [py, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={cfg.processes}"] \
        if cfg.processes > 1 else [py]
    wall["curriculum"] = _run(launch + ["-m", "a2llm.train", "curriculum", "--config", cfg.curriculum, "--data",
                                        cfg.data, "--out", str(work / "curriculum"), "--rvq", str(work / "rvq"),
                                        "--read-data", cfg.read_data] + encoder + q,
                              env={"OMP_NUM_THREADS": "1"} if cfg.processes > 1 else None)
    wall["audio-only"] = _run([py, "-m", "a2llm.train", "audio-only", "--data", cfg.data, "--rvq",
                               str(work / "rvq"), "--out", str(work / "audio-only"), "--steps",
                               str(cfg.audio_only_steps)] + q)
    assemble(cfg, wall)
    return out


def _shipped_rvq(cfg: NanoConfig) -> Path:
    """The motion tokenizer the checkpoint ships: the decoder fine-tune when the config asks for one (it must be
    done), else the RVQ itself."""
    work = Path(cfg.work)
    if not cfg.rvq_smooth_epochs:
        return work / "rvq"
    if not _finished(work / "rvq-smooth", cfg.rvq_smooth_epochs):
        raise FileNotFoundError(f"{work / 'rvq-smooth'} is not finished ({cfg.rvq_smooth_epochs} epochs): run "
                                f"python -m a2llm.train nano to train it")
    return work / "rvq-smooth"


def assemble(cfg: NanoConfig, wall: dict | None = None) -> Path:
    """Copy the trained parts into the checkpoint folder ``cfg.out`` (without resumable training states)."""
    from a2llm.train.curriculum import load_config

    work, out = Path(cfg.work), Path(cfg.out)
    cur = load_config(cfg.curriculum, out=str(work / "curriculum"))
    final = work / "curriculum" / (cur.final or cur.stages[-1].name)
    ignore = shutil.ignore_patterns("train_state.pt", "*.tmp")
    tmp = out.with_name(out.name + ".assembling")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for part in ("backbone", "lora", "connector", "rvq", "tokenizer"):
        shutil.copytree(final / part, tmp / part, ignore=ignore)
    rvq = _shipped_rvq(cfg)
    for part, src in (("rvq", rvq), ("token2wav", work / "token2wav")):
        (tmp / part).mkdir(exist_ok=True)
        for name in ("config.json", "model.safetensors", "train_log.csv", "val_metrics.json", "curves.png"):
            if (src / name).exists():
                shutil.copy2(src / name, tmp / part / name)
    manifest = json.loads((final / MANIFEST).read_text())
    manifest["parts"]["detokenizer"] = "token2wav"
    baselines, curriculum = {}, {}
    # Branch stages (other than the final chain) ship their own connector / LoRA over the final backbone.
    for stage in cur.stages:
        folder = work / "curriculum" / stage.name
        if stage.name == final.name or stage.train == "all" or not (folder / "done.json").exists():
            continue
        dest = tmp / ("baselines" if stage.name == "adapter-only" else "training") / stage.name
        dest.mkdir(parents=True)
        parts = {"backbone": "../../backbone", "rvq": "../../rvq", "tokenizer": "../../tokenizer",
                 "detokenizer": "../../token2wav", "connector": "connector"}
        shutil.copytree(folder / "connector", dest / "connector")
        if stage.train == "lora+connector":
            shutil.copytree(folder / "lora", dest / "lora")
            parts["lora"] = "lora"
        (dest / MANIFEST).write_text(json.dumps({**manifest, "name": f"a2llm-nano/{stage.name}", "parts": parts},
                                                indent=2) + "\n")
        if stage.name == "adapter-only":
            baselines["adapter-only"] = f"baselines/{stage.name}"
        else:
            curriculum[stage.name] = f"training/{stage.name}"
    ao = work / "audio-only"
    if (ao / "done.json").exists():
        shutil.copytree(ao, tmp / "baselines" / "audio-only", ignore=ignore)
        baselines["audio-only"] = "baselines/audio-only"
    manifest["baselines"] = baselines
    manifest["curriculum"] = {**curriculum, final.name: "."}      # table 4: the model after each stage
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    # training/: every stage's log, curves and summary, and the time spent per step of the pipeline.
    summary = {"token2wav_s": round(_log_seconds(work / "token2wav" / "train_log.csv"), 1),
               "rvq_s": round(_log_seconds(work / "rvq" / "train_log.csv"), 1), "stages": {}}
    if rvq != work / "rvq":
        summary["rvq_smooth_s"] = round(_log_seconds(rvq / "train_log.csv"), 1)
    if (work / "encoder" / "done.json").exists():      # its weights live on in the backbone; its figures here
        summary["encoder_s"] = json.loads((work / "encoder" / "done.json").read_text())["seconds"]
        (tmp / "training" / "encoder").mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "train_log.csv", "val_metrics.json", "done.json"):
            shutil.copy2(work / "encoder" / name, tmp / "training" / "encoder" / name)
    for stage in cur.stages:
        folder = work / "curriculum" / stage.name
        if (folder / "done.json").exists():
            dest = tmp / "training" / stage.name
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("log.csv", "curves.png", "done.json"):
                if (folder / name).exists():
                    shutil.copy2(folder / name, dest / name)
            summary["stages"][stage.name] = json.loads((folder / "done.json").read_text())["seconds"]
    if (ao / "done.json").exists():
        summary["audio_only_s"] = json.loads((ao / "done.json").read_text())["seconds"]
    summary["total_training_s"] = round(summary["token2wav_s"] + summary["rvq_s"] + summary.get("rvq_smooth_s", 0.0)
                                        + summary.get("encoder_s", 0.0)
                                        + sum(summary["stages"].values()) + summary.get("audio_only_s", 0.0), 1)
    if wall:
        summary["wall_s_this_invocation"] = {k: round(v, 1) for k, v in wall.items()}
    (tmp / "training" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    print(f"A²-LLM-nano assembled in {out} (training time {summary['total_training_s'] / 60:.1f} min)")
    return out


def plot_curriculum(checkpoint: str | Path, path: str | Path) -> Path:
    """One figure of the whole curriculum: train / val sequence and motion losses against cumulative steps,
    stage boundaries marked (from ``checkpoint/training/*/log.csv``)."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checkpoint = Path(checkpoint)
    summary = json.loads((checkpoint / "training" / "summary.json").read_text())
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    offset = 0
    colours = {name: f"C{i}" for i, name in enumerate(summary["stages"])}     # one colour per stage, both panels
    for name in summary["stages"]:
        rows = list(csv.DictReader(open(checkpoint / "training" / name / "log.csv")))
        if name == "adapter-only":          # a branch from pre-training: drawn from where it starts
            start = int(json.loads((checkpoint / "training" / "pretrain" / "done.json").read_text())["steps"])
        else:
            start = offset
        steps = [start + int(r["step"]) for r in rows]
        for ax, key in zip(axes, ("seq_loss", "motion_loss")):
            vals = [float(r[key]) for r in rows]
            if max(vals) == 0:
                continue
            ax.plot(steps, vals, color=colours[name], label=f"{name} (train)")
            if rows[0].get(f"val_{key}"):
                ax.plot(steps, [float(r[f"val_{key}"]) for r in rows], "--", color=colours[name],
                        label=f"{name} (val)")
            ax.axvline(start, color="0.8", lw=0.8)
        if name != "adapter-only":
            offset = steps[-1]
    for ax, title in zip(axes, ("L_seq (next-token cross-entropy)", "L_motion (Eq. 5, sum over 6 levels)")):
        ax.set_title(title)
        ax.set_xlabel("optimizer step (cumulative)")
        ax.set_yscale("log")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
