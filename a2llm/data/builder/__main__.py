"""``python -m a2llm.data.builder``: build FLAME-QA samples from raw talking videos/audio, resumably.

    python -m a2llm.data.builder init   --manifest DIR --inputs FILES_OR_DIRS...
    python -m a2llm.data.builder run    --manifest DIR [--stages asr,emotion,llm,tts,smirk,filter] [--config cfg.json]
    python -m a2llm.data.builder status --manifest DIR [--config cfg.json] [--json]
    python -m a2llm.data.builder export --manifest DIR --out samples.jsonl
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence

from a2llm.data.builder.config import ConfigError, load_config
from a2llm.data.builder.export import export_samples
from a2llm.data.builder.manifest import Manifest, ManifestError, StageBusyError
from a2llm.data.builder.media import MediaError
from a2llm.data.builder.runner import StageFailed, parse_shard, run_stage
from a2llm.data.builder.stages import PIPELINE, check_config_sections, plan
from a2llm.data.builder.stages.smirk import SmirkNotAvailable
from a2llm.data.builder.status import format_counts, stage_counts

DESCRIPTION = f"""\
FLAME-QA builder (A2-LLM, seed section 4 / appendix A): turns raw talking videos or audio into question-answer
samples with speech, text, emotion and FLAME facial motion.

Stages (pipeline order): {', '.join(PIPELINE)}
  audio    decode each source once to a 16 kHz mono wav
  asr      Whisper transcript + confidence (transformers)
  emotion  acoustic emotion mapped to neutral/happy/sad/surprised/contemptuous/curious (SER classifier)
  llm      LLM cleans the transcript and writes the user question (local HF model or OpenAI-compatible API)
  tts      speak the question (espeak-ng, offline)
  smirk    per-frame FLAME parameters with SMIRK -> motion [T, 58] at 25 fps
  filter   length, speaking-rate and intelligibility gates

State lives in the manifest folder: manifest.jsonl (items), stages/<stage>.jsonl (append-only result logs)
and items/<id>/<stage>/ (artefacts). Every run resumes: items already done are skipped, a crash loses at
most the item in progress. See docs/BUILDER.md.
"""


def _add_manifest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", required=True, metavar="DIR", help="the manifest folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m a2llm.data.builder", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    p = sub.add_parser("init", help="create a manifest from audio/video files (or add new ones to it)",
                       description="List audio/video files in a manifest. Folders are searched recursively; "
                                   "files already listed are skipped, so init can be rerun as a corpus grows.")
    _add_manifest(p)
    p.add_argument("--inputs", nargs="+", required=True, metavar="PATH", help="audio/video files or folders")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run stages on the pending items",
                       description="Run the given stages (plus the stages they require) in pipeline order on "
                                   "every item not done yet. Failures are recorded per item and skipped on later "
                                   "runs unless --retry-failed.")
    _add_manifest(p)
    p.add_argument("--stages", default=",".join(PIPELINE),
                   help=f"comma-separated stages (default: all: {','.join(PIPELINE)})")
    p.add_argument("--config", metavar="cfg.json", help="JSON config with one section per stage (models, thresholds)")
    p.add_argument("--limit", type=int, metavar="N", help="process at most N items per stage in this run")
    p.add_argument("--retry-failed", action="store_true", help="process items whose last attempt failed again")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failed item")
    p.add_argument("--shard", default="0/1", metavar="I/N",
                   help="process only items at positions p with p %% N == I (run N processes, one per GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="per-stage counts: done, failed, pending, blocked")
    _add_manifest(p)
    p.add_argument("--config", metavar="cfg.json", help="the run's config (the filter's requirements depend on it)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="write the samples that passed the filter as JSON lines")
    _add_manifest(p)
    p.add_argument("--out", required=True, metavar="samples.jsonl", help="output file")
    p.set_defaults(func=cmd_export)
    return parser


def cmd_init(args: argparse.Namespace) -> int:
    manifest, added = Manifest.init(args.manifest, args.inputs)
    videos = sum(it.kind == "video" for it in added)
    print(f"{manifest.root}: added {len(added)} item(s) ({videos} video, {len(added) - videos} audio); "
          f"{len(manifest.items)} in all")
    return 0


def _stage_names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ValueError("--stages is empty")
    return names


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check_config_sections(config)
    manifest = Manifest(args.manifest)
    shard = parse_shard(args.shard)
    requested = _stage_names(args.stages)
    stages = plan(requested, config)
    added = [s.name for s in stages if s.name not in requested]
    if added:
        print(f"also running required stage(s): {', '.join(added)}")
    while stages:
        stage = stages.pop(0)
        summary = run_stage(manifest, stage, limit=args.limit, retry_failed=args.retry_failed,
                            fail_fast=args.fail_fast, shard=shard, progress=not args.no_progress)
        print(summary.line())
        del stage  # the last reference to its model: free it before the next stage loads its own
        _release_memory()
    return 0  # failed items are recorded results, not a failed run (see `status`)


def _release_memory() -> None:
    """Collect a finished stage's model and hand its GPU memory back (torch caches freed blocks)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check_config_sections(config)
    manifest = Manifest(args.manifest)
    counts = stage_counts(manifest, plan(PIPELINE, config))
    if args.json:
        print(json.dumps({"items": len(manifest.items), "stages": [c.to_json() for c in counts]}, indent=2))
    else:
        print(format_counts(counts, len(manifest.items)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    n = export_samples(Manifest(args.manifest), args.out)
    print(f"wrote {n} sample(s) to {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit status.

    Expected problems (missing files, bad config, SMIRK not installed, a busy stage, ``--fail-fast``) end
    with ``error: ...`` on stderr and status 1; argument mistakes with argparse's usage message, status 2.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SmirkNotAvailable, StageBusyError, StageFailed, ManifestError, ConfigError, MediaError,
            FileNotFoundError, ValueError, OSError, ImportError) as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
