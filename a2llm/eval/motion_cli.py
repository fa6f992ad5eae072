"""``python -m a2llm.eval motion``: the paper's motion metrics (appendix C) and ours for one pair of files or two folders.

    python -m a2llm.eval motion --pred P.npz --ref R.npz [--head open|flame|PATH] [--json] [--plot OUT.png]
    python -m a2llm.eval motion --pred-dir D1 --ref-dir D2 [--name SYSTEM] [--head ...] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from a2llm.eval import metrics as M
from a2llm.motion.io import MotionFormatError, load_motion, load_npz, validate_vertices
from a2llm.motion.layout import FPS

if TYPE_CHECKING:
    from a2llm.head.base import HeadModel

DESCRIPTION = """\
Facial-motion metrics of the A2-LLM paper (appendix C, eqs. 11-17), computed in canonical space (global
head rotation removed) between a predicted and a reference clip of the same utterance at 25 fps.
O = mouth opening (distance of the upper- and lower-lip landmarks), W = lip width (mouth corners),
d = distance of each upper-face vertex to the head's neutral template, v = O[t] - O[t-1].

  mod_mm             (eq. 11) Mouth Opening Distance: mean |O_pred - O_ref| x 1000, mm (lower is better).
  ufd                (eq. 12) Upper Face Dynamics of the prediction (reference-free): mean over frames and
                     upper-face vertices of |d[t] - d[t-1]| x 1e5 (higher = livelier upper face; grows
                     with jitter too, so read it beside upper_face_jitter).
  temporal_corr      (eq. 13) Pearson r of O_pred and O_ref (higher is better).
  velocity_corr      (eq. 14) Pearson r of v_pred and v_ref (higher is better).
  lip_width_corr     (eq. 15) Pearson r of W_pred and W_ref (higher is better).
  liveliness         (eq. 16) std(v_pred) / (std(v_ref) + eps) (best near 1; < 1 over-smoothed).
  peak_align_ms      (eq. 17) median over reference peaks of O of the distance to the nearest predicted
                     peak, ms (>= 0, lower is better).
  upper_face_jitter  (ours) mean |second difference of d| of pred over ref's (1 = as smooth as ref).
  upper_face_err_mm  (ours) mean distance of pred's upper-face vertices to ref's, mm (lower is better).

Undefined values (a correlation of a constant signal, no peaks) are NaN (null in JSON). Clips of
different length are truncated to the shorter. Files are motion .npz ('motion' [T,58], 'fps') or
vertex .npz ('vertices' [T,V,3] in the head's topology, optional 'fps').
"""


@dataclass(frozen=True)
class Clip:
    """What the metrics need of a file: [T, 58] motion or [T, V, 3] vertices, and its frame rate."""

    array: np.ndarray
    fps: int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``motion`` subcommand to the ``a2llm.eval`` entry point."""
    p = subparsers.add_parser("motion", help="motion metrics (MOD, UFD, correlations, liveliness, peak align)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    single = p.add_argument_group("one pair")
    single.add_argument("--pred", type=Path, metavar="P.npz", help="predicted clip")
    single.add_argument("--ref", type=Path, metavar="R.npz", help="reference (ground-truth) clip")
    single.add_argument("--plot", type=Path, metavar="OUT.png",
                        help="also draw mouth opening (mm) of pred vs ref over time (s) to this image")
    folders = p.add_argument_group("folders (pairs files by name; prints mean ± std over pairs)")
    folders.add_argument("--pred-dir", type=Path, metavar="D1", help="folder of predicted clips")
    folders.add_argument("--ref-dir", type=Path, metavar="D2", help="folder of reference clips, same file names")
    folders.add_argument("--name", help="system name for the table row (default: the --pred-dir folder name)")
    p.add_argument("--head", default="open", metavar="open|flame|PATH",
                   help="head whose landmarks and regions define the metrics: 'open' (default), 'flame', "
                        "a FLAME folder or a head .npz")
    p.add_argument("--json", action="store_true",
                   help='print JSON: the metric keys for a pair; {"mean", "std", "n"} for folders')
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    """Entry of the ``motion`` subcommand; returns the process exit status."""
    pair_mode = args.pred is not None or args.ref is not None
    dir_mode = args.pred_dir is not None or args.ref_dir is not None
    parser: argparse.ArgumentParser = args._parser
    if pair_mode == dir_mode:
        parser.error("give either --pred and --ref, or --pred-dir and --ref-dir")
    if pair_mode and (args.pred is None or args.ref is None):
        parser.error("--pred and --ref go together")
    if dir_mode and (args.pred_dir is None or args.ref_dir is None):
        parser.error("--pred-dir and --ref-dir go together")
    if dir_mode and args.plot is not None:
        parser.error("--plot draws one pair; use it with --pred/--ref")

    from a2llm.head import load_head  # torch-heavy: imported only once the arguments are valid

    head = load_head(args.head)
    if pair_mode:
        return _run_pair(args, head)
    return _run_dirs(args, head)


# --- loading -----------------------------------------------------------------------------------
def load_clip(path: Path) -> Clip:
    """Read a motion .npz (via :func:`a2llm.motion.io.load_motion`) or a vertex .npz ('vertices')."""
    arrays = load_npz(path)
    if "motion" in arrays:
        clip = load_motion(path)
        return Clip(clip.motion, clip.fps)
    if "vertices" in arrays:
        fps = int(arrays["fps"]) if "fps" in arrays else FPS
        return Clip(validate_vertices(arrays["vertices"], allow_any_topology=True, name=f"{path}: vertices"), fps)
    raise MotionFormatError(f"{path} has neither 'motion' [T, 58] nor 'vertices' [T, V, 3] "
                            f"(keys present: {sorted(arrays)})")


def _pair_metrics(pred: Clip, ref: Clip, head: "HeadModel", label: str) -> dict[str, float]:
    if pred.fps != ref.fps:
        raise ValueError(f"{label}: pred is at {pred.fps} fps and ref at {ref.fps} fps; resample one first")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = M.compute_metrics(pred.array, ref.array, head, fps=pred.fps)
    for w in caught:  # re-emitted with the pair's name, which matters in folder mode
        print(f"warning: {label}: {w.message}", file=sys.stderr)
    return result


# --- one pair ----------------------------------------------------------------------------------
def _run_pair(args: argparse.Namespace, head: "HeadModel") -> int:
    pred, ref = load_clip(args.pred), load_clip(args.ref)
    result = _pair_metrics(pred, ref, head, f"{args.pred.name} vs {args.ref.name}")
    if args.plot is not None:
        from a2llm.eval.plots import plot_mouth_opening

        pv, rv = M.to_vertices(pred.array, head), M.to_vertices(ref.array, head)
        plot_mouth_opening(M.mouth_opening(pv, head), M.mouth_opening(rv, head), args.plot, fps=pred.fps,
                           title=f"Mouth opening: {args.pred.name} vs {args.ref.name}")
        print(f"wrote {args.plot}", file=sys.stderr)
    if args.json:
        print(json.dumps(_json_safe(result), indent=2))
        return 0
    ref_ufd = M.upper_face_dynamics(M.to_vertices(ref.array, head), head)
    print(f"pred: {args.pred}\nref:  {args.ref}\nhead: {head.name}, {pred.fps} fps\n")
    print(format_pair_table(result))
    print(f"\nUFD is reference-free; the reference's own UFD is {ref_ufd:.3f}.")
    return 0


def format_pair_table(result: dict[str, float]) -> str:
    """One metric per row: name, key, value, unit, which way is better."""
    rows = [("metric", "key", "value", "unit", "better")]
    for key in M.METRIC_KEYS:
        info = M.METRIC_INFO[key]
        rows.append((info.name, key, _fmt(result[key]), info.unit, info.better))
    return _grid(rows, right_align={2})


# --- folders -----------------------------------------------------------------------------------
def pair_files(pred_dir: Path, ref_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Match ``*.npz`` files of two folders by file name.

    Returns:
        (pairs sorted by name, pred files without a reference, reference files without a prediction).
    """
    for d, flag in ((pred_dir, "--pred-dir"), (ref_dir, "--ref-dir")):
        if not d.is_dir():
            raise FileNotFoundError(f"{flag} {d} is not a folder")
    preds = {p.name: p for p in pred_dir.glob("*.npz")}
    refs = {p.name: p for p in ref_dir.glob("*.npz")}
    pairs = [(preds[n], refs[n]) for n in sorted(preds.keys() & refs.keys())]
    pred_only = [preds[n] for n in sorted(preds.keys() - refs.keys())]
    ref_only = [refs[n] for n in sorted(refs.keys() - preds.keys())]
    return pairs, pred_only, ref_only


def _run_dirs(args: argparse.Namespace, head: "HeadModel") -> int:
    pairs, pred_only, ref_only = pair_files(args.pred_dir, args.ref_dir)
    for path in pred_only:
        print(f"skipped: {path} has no reference {args.ref_dir / path.name}", file=sys.stderr)
    for path in ref_only:
        print(f"skipped: {path} has no prediction {args.pred_dir / path.name}", file=sys.stderr)
    if not pairs:
        raise FileNotFoundError(f"no .npz file name is present in both {args.pred_dir} and {args.ref_dir}; "
                                "predictions and references are paired by identical file names")
    results = [_pair_metrics(load_clip(p), load_clip(r), head, p.name) for p, r in pairs]
    stats = M.aggregate(results)
    if args.json:
        out = {"mean": {k: m for k, (m, _) in stats.items()}, "std": {k: s for k, (_, s) in stats.items()},
               "n": len(results)}
        print(json.dumps(_json_safe(out), indent=2))
        return 0
    name = args.name or args.pred_dir.resolve().name
    print(f"{len(results)} pairs; head {head.name}; mean ± std over pairs\n")
    print(format_system_table({name: stats}))
    return 0


def format_system_table(systems: dict[str, dict[str, tuple[float, float]]]) -> str:
    """The paper's table-3 layout: one row per system, one "mean ± std" column per metric."""
    arrow = {"lower": "↓", "higher": "↑", "closer to 1": "→1"}
    header = ("System",) + tuple(f"{M.METRIC_INFO[k].short} {arrow[M.METRIC_INFO[k].better]}"
                                 for k in M.METRIC_KEYS)
    rows = [header] + [(name,) + tuple(f"{_fmt(m)} ± {_fmt(s)}" for m, s in (stats[k] for k in M.METRIC_KEYS))
                       for name, stats in systems.items()]
    return _grid(rows, right_align=set(range(1, len(header))))


# --- formatting helpers ------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.3f}"


def _grid(rows: list[tuple[str, ...]], right_align: set[int]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.rjust(w) if i in right_align else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _json_safe(x: Any) -> Any:
    """NaN is not valid JSON: write undefined metrics as null."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return None
    return x
