"""``python -m a2llm.eval tables``: the paper's tables 3, 4 and 6 at nano scale, plus TTS PER and AQAA accuracy.

    python -m a2llm.eval tables --checkpoint checkpoints/a2llm-nano [--data data/flame-qa-nano] [--json]
                                [--limit N] [--figure OUT.png] [--artalk DIR]

On FLAME-QA-nano's test split (voices and templates never seen in training) against the procedural ground truth,
every cell the mean ± std over test samples (the paper's table 3 format), metrics of appendix C
(a2llm/eval/metrics.py):

* **table 3** (spatial: MOD, UFD, plus our upper-face jitter and error) — the ground truth (UFD is reference-free),
  A²-LLM-nano, the audio-only avatar (same connector and motion tokenizer, driven by the speech), and ARTalk when
  ``--artalk`` gives its outputs.
* **table 4** (temporal dynamics: temporal / velocity / lip-width correlation, liveliness, peak align) —
  A²-LLM-nano against the strongest baseline: ARTalk when given, else the audio-only avatar (as the paper compares
  with ARTalk).
* **table 6** (the same five) — adapter-only (frozen LLM, only the connector trained) vs joint (the full curriculum).
* **curriculum stages** — every metric after stage 1, 2 and 3 (our own table: how the curriculum moves them).

Motion is generated on the reference answer's timeline: the LLM is fed the reference answer's tokens (as if it had
spoken them), the connector predicts motion tokens segment by segment from its own earlier predictions, the RVQ
decoder turns them into FLAME parameters. The audio-only avatar gets the reference answer's speech.

Also: **TTS phone error rate** (answer text -> greedy speech tokens, collapsed, against the espeak-ng phone
frames) and **AQAA accuracy** (spoken question -> greedy answer text, normalised, equal to the reference answer)
on questions of seen templates spoken by held-out voices.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from a2llm.eval.metrics import (EXTRA_KEYS, METRIC_INFO, METRIC_KEYS, SPATIAL_KEYS, TEMPORAL_KEYS, aggregate,
                                compute_metrics)

BATCH = 16


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


#: The columns each table shows (every row of the JSON holds every metric).
TABLE_COLUMNS = {"table3": SPATIAL_KEYS + EXTRA_KEYS + ("upper_face_jitter_pooled",), "table4": TEMPORAL_KEYS, "table6": TEMPORAL_KEYS,
                 "curriculum_stages": METRIC_KEYS}
TABLE_TITLES = {"table3": "Table 3 — spatial quality (mean ± std over test samples)",
                "table4": "Table 4 — temporal dynamics: A²-LLM-nano vs the strongest baseline",
                "table6": "Table 6 — adapter-only vs joint training",
                "curriculum_stages": "Curriculum stages — every metric after each stage"}


def motion_metrics(motions: list[np.ndarray], samples, head) -> dict[str, list[float]]:
    """[mean, std] of each metric over samples (``nan`` pairs left out), plus ``upper_face_jitter_pooled``: the
    split's total upper-face acceleration over the reference's (Σ|Δ²d_pred| / Σ|Δ²d_ref| over every frame and
    vertex of every pair; per pair, a reference with an almost still upper face makes the ratio explode, so the
    per-pair mean is heavy-tailed), as [value, 0]."""
    from a2llm.eval.metrics import to_vertices, upper_face_displacement

    results, num, den = [], 0.0, 0.0
    for p, x in zip(motions, samples):          # one pair at a time: a split's vertices do not fit in memory
        pv, rv = to_vertices(p, head), to_vertices(x.motion, head)                 # skinned once per pair
        results.append(compute_metrics(pv, rv, head))
        n = min(len(pv), len(rv))
        if n >= 3:
            dp, dr = upper_face_displacement(pv[:n], head), upper_face_displacement(rv[:n], head)
            num += float(np.abs(np.diff(dp, n=2, axis=0)).sum())
            den += float(np.abs(np.diff(dr, n=2, axis=0)).sum())
    out = {k: [m, s] for k, (m, s) in aggregate(results).items()}
    out["upper_face_jitter_pooled"] = [num / den if den > 0 else math.nan, 0.0]
    return out


def imported_motions(folder: str | Path, samples) -> list[np.ndarray]:
    """A baseline's outputs for ``samples``, one file per sample named by its id (``{id}.npz``, ``.npy``, ``.pt``
    or a frame folder; any layout :func:`a2llm.motion.importers.import_motion` reads, e.g. ARTalk's 106-D)."""
    from a2llm.motion.importers import import_motion

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--artalk {folder} is not a folder")
    found, missing = [], []
    for s in samples:
        hits = sorted(p for p in folder.glob(f"{s.id}*") if p.stem == s.id or p.name == s.id)
        if not hits:
            missing.append(s.id)
            continue
        clip = import_motion(hits[0])
        if round(clip.fps) != 25:
            raise ValueError(f"{hits[0].name}: {clip.fps} fps; the metrics need 25 fps (resample it first)")
        found.append(clip.motion)
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(samples)} test samples have no file in {folder} (first: "
                                f"{missing[:3]}); name each output after its sample id, e.g. {samples[0].id}.npz")
    return found


def reference_motions(model, tok, samples) -> list[np.ndarray]:
    from a2llm.generate import Generator

    gen = Generator(model, tok)
    out = []
    for chunk in _chunks(samples, BATCH):
        out += gen.motion_for_reference(chunk, "aqaa")
    return out


def audio_only_motions(avatar, rvq, samples) -> list[np.ndarray]:
    return [avatar.animate(s.response_audio, s.sample_rate, rvq) for s in samples]


def tts_phone_error_rate(model, tok, samples) -> dict[str, float]:
    """Mean PER of TTS over ``samples``: the answer text is given (forced into the text slots of the interleaved
    layout), every speech token is the model's greedy choice. Also split by answers seen in training and answers
    never seen (held-out templates, held-out topics: ``meta.holdout`` "template" or "topic")."""
    from a2llm.data.phones import phone_error_rate
    from a2llm.generate import Generator

    gen, rates = Generator(model, tok), []
    for chunk in _chunks(samples, BATCH):
        texts = [tok.encode(s.response_text, add_special_tokens=False) for s in chunk]
        for a, s in zip(gen.answer(chunk, "tts", with_motion=False, force_text=texts), chunk):
            rates.append((s.meta.get("holdout") in ("template", "topic"),
                          phone_error_rate(a.audio_codes, s.audio_tokens)))
    pick = lambda held: [r for h, r in rates if h == held]            # noqa: E731
    return {"all": float(np.mean([r for _, r in rates])),
            "seen_answers": float(np.mean(pick(False))) if pick(False) else math.nan,
            "held_out_answers": float(np.mean(pick(True))) if pick(True) else math.nan}


def aqaa_accuracy(model, tok, samples) -> tuple[float, list[dict]]:
    """Fraction of spoken questions whose greedy answer text equals the reference (normalised)."""
    from a2llm.generate import Generator, normalise_text

    from a2llm.data.nano.templates import TEMPLATES, TOPICS

    by_id = {t.id: t for t in TEMPLATES}
    gen, rows = Generator(model, tok), []
    for chunk in _chunks(samples, BATCH):
        for a, s in zip(gen.answer(chunk, "aqaa", with_motion=False), chunk):
            tpl = by_id.get(s.meta.get("template", ""))
            # diagnostic: the right answer template, whatever topic it names
            fills = {normalise_text(tpl.fill(t)[1]) for t in TOPICS} if tpl else set()
            correct = normalise_text(a.text) == normalise_text(s.response_text)
            rows.append({"id": s.id, "question": s.question_text, "reference": s.response_text, "answer": a.text,
                         "correct": correct, "template_correct": correct or normalise_text(a.text) in fills})
    return float(np.mean([r["correct"] for r in rows])), rows


def emotion_profile(motions: list[np.ndarray], samples) -> dict[str, dict[str, float]]:
    """Mean of the semantic upper-face / smile coefficients per emotion of the answer text."""
    from a2llm.head.open_head import EXPRESSION_NAMES

    names = ("brow_raise", "brow_furrow", "inner_brow_raise", "smile", "mouth_corner_down")
    cols = {n: EXPRESSION_NAMES.index(n) for n in names}
    out: dict[str, dict[str, float]] = {}
    for emo in sorted({s.emotion for s in samples}):
        ms = [m for m, s in zip(motions, samples) if s.emotion == emo]
        out[emo] = {n: float(np.mean([m[:, c].mean() for m in ms])) for n, c in cols.items()}
    return out


def plot_emotion(profiles: dict[str, dict], path: Path) -> None:
    """Grouped bars: per emotion, each system's mean coefficient (one panel per coefficient)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(profiles)
    emotions = list(next(iter(profiles.values())))
    coeffs = list(next(iter(next(iter(profiles.values())).values())))
    fig, axes = plt.subplots(1, len(coeffs), figsize=(3.2 * len(coeffs), 3.4), sharey=False)
    x = np.arange(len(emotions))
    w = 0.8 / len(systems)
    for ax, c in zip(axes, coeffs):
        for i, sysname in enumerate(systems):
            ax.bar(x + (i - (len(systems) - 1) / 2) * w, [profiles[sysname][e][c] for e in emotions], w, label=sysname)
        ax.set_xticks(x, [e[:5] for e in emotions], rotation=45)
        ax.set_title(c.replace("_", " "))
        ax.axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("mean coefficient")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Upper face and smile by the emotion of the answer text (FLAME-QA-nano test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_tables(checkpoint: str | Path, data: str | Path, limit: int | None = None, gen_limit: int = 96,
               figure: str | Path | None = None, progress: bool = True, artalk: str | Path | None = None) -> dict:
    from a2llm.baselines.audio_only import AudioOnlyAvatar
    from a2llm.head import load_head
    from a2llm.model import A2LLM, load_checkpoint_tokenizer, read_manifest
    from a2llm.train.data import MemoryDataset

    checkpoint = Path(checkpoint)
    manifest = read_manifest(checkpoint)
    baselines = manifest.get("baselines", {})
    missing = [b for b in ("audio-only", "adapter-only") if b not in baselines]
    if missing:
        raise FileNotFoundError(f"{checkpoint}/a2llm.json lists no {missing} baseline(s): train them with "
                                "python -m a2llm.train nano")
    say = print if progress else (lambda *a, **k: None)
    t0 = time.time()
    test = MemoryDataset(data, "test").samples
    samples = test[:limit] if limit else test
    head = load_head(manifest.get("head", "open"))
    tok = load_checkpoint_tokenizer(checkpoint)
    joint = A2LLM.from_pretrained(checkpoint)
    rvq = joint.motion_tokenizer
    motions = {}
    say(f"[tables] {len(samples)} test samples; motion of A²-LLM-nano ...", file=sys.stderr)
    motions["a2llm-nano"] = reference_motions(joint, tok, samples)
    say("[tables] audio-only ...", file=sys.stderr)
    avatar = AudioOnlyAvatar.from_pretrained(checkpoint / baselines["audio-only"])
    motions["audio-only"] = audio_only_motions(avatar, rvq, samples)
    say("[tables] adapter-only ...", file=sys.stderr)
    motions["adapter-only"] = reference_motions(A2LLM.from_pretrained(checkpoint / baselines["adapter-only"]), tok,
                                                samples)
    stages = {}
    for name, sub in manifest.get("curriculum", {}).items():
        if sub != ".":
            say(f"[tables] after {name} ...", file=sys.stderr)
            stages[name] = reference_motions(A2LLM.from_pretrained(checkpoint / sub), tok, samples)
    if artalk is not None:
        motions["artalk"] = imported_motions(artalk, samples)
    scores = {name: motion_metrics(m, samples, head) for name, m in {**motions, **stages}.items()}
    stage_rows = {name: scores[name] for name in stages}
    final = [n for n, sub in manifest.get("curriculum", {}).items() if sub == "."]
    stage_rows[final[0] if final else "final"] = scores["a2llm-nano"]
    strongest = "artalk" if artalk is not None else "audio-only"
    result = {
        "table3": {"ground truth": motion_metrics([s.motion for s in samples], samples, head),
                   "a2llm-nano": scores["a2llm-nano"], "audio-only": scores["audio-only"],
                   **({"artalk": scores["artalk"]} if artalk is not None else {})},
        "table4": {strongest: scores[strongest], "a2llm-nano": scores["a2llm-nano"]},
        "table6": {"adapter-only": scores["adapter-only"], "joint": scores["a2llm-nano"]},
        "curriculum_stages": stage_rows,
        "num_test_samples": len(samples),
    }
    say("[tables] TTS phone error rate ...", file=sys.stderr)
    per = tts_phone_error_rate(joint, tok, samples[:gen_limit])
    result["tts_per"], result["tts_per_split"] = per["all"], per
    say("[tables] AQAA accuracy ...", file=sys.stderr)
    voice = [s for s in test if s.meta.get("holdout") == "voice"][:gen_limit]
    result["aqaa_accuracy"], rows = aqaa_accuracy(joint, tok, voice)
    result["aqaa_examples"] = rows[:8]
    result["aqaa_template_accuracy"] = float(np.mean([r["template_correct"] for r in rows])) if rows else math.nan
    result["num_generated"] = {"tts": min(gen_limit, len(samples)), "aqaa": len(voice)}
    profiles = {"ground truth": emotion_profile([s.motion for s in samples], samples),
                "a2llm-nano": emotion_profile(motions["a2llm-nano"], samples),
                "audio-only": emotion_profile(motions["audio-only"], samples)}
    result["emotion_profile"] = profiles
    if figure:
        plot_emotion(profiles, Path(figure))
    result["seconds"] = round(time.time() - t0, 1)
    return result


def _fmt(key: str, v: float) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        f"{v:.1f}" if key == "peak_align_ms" else f"{v:.3f}")


def cell(key: str, mean_std) -> str:
    """"mean ± std" of one metric, as the paper prints its table 3."""
    m, s = mean_std
    return f"{_fmt(key, m)} ± {_fmt(key, s)}"


def format_table(name: str, rows: dict[str, dict]) -> str:
    """One of the tables as fixed-width text: one row per system, the table's columns, every cell mean ± std."""
    keys = TABLE_COLUMNS[name]
    widths = {k: max(18, len(METRIC_INFO[k].short) + 2) for k in keys}
    name_w = max([18] + [len(n) + 2 for n in rows])
    head = " " * name_w + "".join(f"{METRIC_INFO[k].short:>{widths[k]}}" for k in keys)
    lines = [TABLE_TITLES[name], head] + [f"{sys_name:<{name_w}}" + "".join(f"{cell(k, r[k]):>{widths[k]}}"
                                                                            for k in keys)
                                          for sys_name, r in rows.items()]
    return "\n".join(lines)


def markdown_table(name: str, rows: dict[str, dict]) -> str:
    """The same table in Markdown (docs/NANO.md)."""
    keys = TABLE_COLUMNS[name]
    arrow = {"lower": "↓", "higher": "↑", "closer to 1": "→1"}
    head = "| system | " + " | ".join(f"{METRIC_INFO[k].short} {arrow[METRIC_INFO[k].better]}" for k in keys) + " |"
    sep = "|---" * (len(keys) + 1) + "|"
    return "\n".join([head, sep] + [f"| {n} | " + " | ".join(cell(k, r[k]) for k in keys) + " |"
                                     for n, r in rows.items()])


def format_result(r: dict) -> str:
    parts = [format_table(name, r[name]) for name in TABLE_COLUMNS] + [
             f"TTS phone error rate: {100 * r['tts_per']:.1f} % ({r['num_generated']['tts']} answers; answers seen "
             f"in training {100 * r['tts_per_split']['seen_answers']:.1f} %, never seen "
             f"{100 * r['tts_per_split']['held_out_answers']:.1f} %)",
             f"AQAA answer accuracy (held-out voices, seen questions): {100 * r['aqaa_accuracy']:.1f} % "
             f"({r['num_generated']['aqaa']} questions; right answer template, any topic: "
             f"{100 * r['aqaa_template_accuracy']:.1f} %)",
             f"({r['num_test_samples']} test samples, {r['seconds']:.0f} s)"]
    return "\n\n".join(parts)


def _run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    result = run_tables(args.checkpoint, args.data, limit=args.limit, gen_limit=args.gen_limit, figure=args.figure,
                        progress=not args.json, artalk=args.artalk)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "aqaa_examples"}, indent=2))
    else:
        print(format_result(result))
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tables", help="the paper's tables 3, 4, 6 (mean ± std) + TTS PER + AQAA accuracy at nano scale",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="checkpoints/a2llm-nano", help="A²-LLM checkpoint with baselines")
    p.add_argument("--data", default="data/flame-qa-nano", help="FLAME-QA folder with a test split")
    p.add_argument("--limit", type=int, help="use only the first N test samples for the motion tables")
    p.add_argument("--gen-limit", type=int, default=96, help="questions / answers generated for PER and accuracy")
    p.add_argument("--figure", help="write the emotion figure (PNG) here")
    p.add_argument("--artalk", metavar="DIR",
                   help="ARTalk's outputs for the test samples, one file per sample named by its id (any layout "
                        "the motion importers read): added to table 3 and the baseline of table 4")
    p.add_argument("--save", help="also write the full result (with example answers) as JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch threads (tiny models run best on 1)")
    p.add_argument("--json", action="store_true", help="print JSON (keys table3, table4, table6, curriculum_stages, tts_per, ...; every "
                                                        "cell [mean, std])")
    p.set_defaults(func=_run)
