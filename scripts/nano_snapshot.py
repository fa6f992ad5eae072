"""Copy what a nano training run needs to resume into a folder that git can carry to the next machine.

    python scripts/nano_snapshot.py --work /work/nano-run --to runs/nano && git add -f runs/nano   # docs/NANO.md

A session's machine may be gone by the next session; only the repository survives. ``python -m a2llm.train nano``
resumes from its working folder (configs/nano/nano.json: ``runs/nano``), so that folder's resumable part is
committed: finished parts as weights and logs only (the pipeline skips them on those: a2llm/train/nano.py
``_finished``, ``done.json``), the unfinished curriculum stage with its ``train_state.pt`` (weights, optimizer,
step). The corpora are not copied: they are rebuilt from their seed, sample by sample identical.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

EPOCH_PARTS = {"token2wav": "token2wav_epochs", "rvq": "rvq_epochs", "rvq-smooth": "rvq_smooth_epochs"}


def _epochs_done(folder: Path) -> int:
    log = folder / "train_log.csv"
    return max((int(r["epoch"]) for r in csv.DictReader(open(log))), default=0) if log.exists() else 0


def resumable_files(work: Path, config: Path) -> tuple[list[Path], list[Path]]:
    """(files a resumed run needs, files it does not: finished parts' ``train_state.pt``) under ``work``."""
    cfg = json.loads(config.read_text())
    keep, drop = [], []

    def add(src: Path, keep_state: bool) -> None:
        for f in sorted(src.rglob("*")):
            if f.is_file() and f.suffix != ".tmp":
                (drop if f.name == "train_state.pt" and not keep_state else keep).append(f)

    for part, key in EPOCH_PARTS.items():
        folder = work / part
        if folder.exists():        # finished: weights and logs; unfinished: its state too, to go on from it
            add(folder, keep_state=_epochs_done(folder) < int(cfg.get(key, 0)))
    for folder in (work / "encoder", work / "audio-only"):
        if folder.exists():
            add(folder, keep_state=not (folder / "done.json").exists())
    cur = work / "curriculum"
    if cur.exists():
        for stage in sorted(p for p in cur.iterdir() if p.is_dir()):
            add(stage, keep_state=not (stage / "done.json").exists())
        keep += [f for f in cur.iterdir() if f.is_file()]
    return keep, drop


def snapshot(work: Path, to: Path, config: Path) -> list[Path]:
    """Copy ``work``'s resumable files into ``to`` (replacing it), or, when ``to`` is ``work`` itself, delete
    what a resumed run does not need (finished parts' optimizer states, never read again); returns the files."""
    keep, drop = resumable_files(work, config)
    if to.resolve() == work.resolve():
        for f in drop:
            f.unlink()
        return keep
    if to.exists():
        shutil.rmtree(to)
    written = []
    for f in keep:
        dest = to / f.relative_to(work)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
        written.append(dest)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="the run's working folder")
    ap.add_argument("--to", default="runs/nano", help="where to copy it (default runs/nano, nano.json's work); the "
                                                     "working folder itself: only drop what a resumed run never reads")
    ap.add_argument("--config", default="configs/nano/nano.json", help="the run's pipeline config")
    args = ap.parse_args()
    work, to = Path(args.work), Path(args.to)
    if not work.is_dir():
        ap.error(f"no working folder at {work}")
    files = snapshot(work, to, Path(args.config))
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {size / 2**20:.1f} MB in {to} (git add -f {to})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
