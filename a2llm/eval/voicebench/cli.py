"""``python -m a2llm.eval voicebench``: the seed's table 2 (language capability on OpenAudioBench).

    python -m a2llm.eval voicebench --data OpenAudioBench --checkpoint checkpoints/a2llm-nano \\
        --judge openai [--judge-model gpt-4o-2024-08-06] [--judge-url URL] [--subsets ...] [--limit N] [--json]

Every spoken question of the chosen subsets goes through the engine (a fresh dialogue each); the text answers
are scored as OpenAudioBench's release scores them — a judge model with one rubric per subset — or, for Llama
Questions / TriviaQA / Web Questions only, with a reference-matching rule (--qa-scoring match; not the release's
protocol). Answers and verdicts are cached under --out/<model>/, appended per item: rerun the same command after
an interruption and only the missing items are done. Details: docs/EVAL.md.

Judges: --judge openai talks to any OpenAI-compatible /chat/completions endpoint (--judge-url, default
$OPENAI_BASE_URL or OpenAI's API; key from $OPENAI_API_KEY or the variable named by --judge-api-key-env);
--judge hf runs a local Hugging Face chat model (--judge-model). $A2LLM_JUDGE / $A2LLM_JUDGE_MODEL give defaults.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from a2llm.eval.voicebench.layout import SUBSETS


def register(subparsers) -> None:
    p = subparsers.add_parser("voicebench", help="table 2: OpenAudioBench language capability (spoken QA)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="OpenAudioBench folder in its released layout: DIR/eval_datas/<subset>/<subset>.csv and "
                        "DIR/eval_datas/<subset>/audios/ (DIR may also be eval_datas itself)")
    p.add_argument("--checkpoint", nargs="+", default=["checkpoints/a2llm-nano"],
                   help="A²-LLM checkpoint folder(s); one table row each (default: checkpoints/a2llm-nano)")
    p.add_argument("--subsets", nargs="+", choices=list(SUBSETS), default=list(SUBSETS), metavar="SUBSET",
                   help=f"subsets to run (default: all five: {' '.join(SUBSETS)})")
    p.add_argument("--out", default="outputs/voicebench",
                   help="cache folder; answers and verdicts of each model go to OUT/<model>/ (default: %(default)s)")
    p.add_argument("--judge", choices=["openai", "hf", "none"], default=os.environ.get("A2LLM_JUDGE", "none"),
                   help="judge backend (default: $A2LLM_JUDGE or none)")
    p.add_argument("--judge-model", default=os.environ.get("A2LLM_JUDGE_MODEL"),
                   help="judge model: a name the endpoint serves (openai; default gpt-4o-2024-08-06, the release's) "
                        "or a Hugging Face model id / folder (hf; required)")
    p.add_argument("--judge-url", default=None,
                   help="OpenAI-compatible API root, e.g. http://localhost:8000/v1 (default: $OPENAI_BASE_URL or "
                        "https://api.openai.com/v1)")
    p.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the judge's API key (default: %(default)s)")
    p.add_argument("--judge-device", default=None, help="device of an hf judge (cuda / cpu)")
    p.add_argument("--qa-scoring", choices=["judge", "match"], default="judge",
                   help="Llama Questions / TriviaQA / Web Questions: the release's judge (default) or the "
                        "reference-matching rule (no judge needed; not the release's protocol)")
    p.add_argument("--answers-only", action="store_true", help="only collect (and cache) the answers; score nothing")
    p.add_argument("--limit", type=int, default=None, help="first N questions of each subset (quick checks)")
    p.add_argument("--max-new-tokens", type=int, default=800, help="decode steps per reply (default: %(default)s)")
    p.add_argument("--device", default=None, help="engine device: cuda / cpu (default: CUDA when available)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import torch

    from a2llm.eval.voicebench.judges import JudgeError, make_judge
    from a2llm.eval.voicebench.layout import load_items
    from a2llm.eval.voicebench.scoring import Scorer
    from a2llm.eval.voicebench.table import format_table, to_json

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be a positive number of questions")
    subsets = list(dict.fromkeys(args.subsets))
    scorer = None
    if not args.answers_only:
        needs_judge = args.qa_scoring == "judge" or any(not SUBSETS[s].matchable for s in subsets)
        judge = make_judge(args.judge, args.judge_model, args.judge_url, args.judge_api_key_env,
                           args.judge_device) if needs_judge else None
        scorer = Scorer(judge, args.qa_scoring)
        scorer.check(subsets)                            # before any model is loaded
    for s in subsets:                                    # the layout too
        load_items(args.data, s, args.limit)
    torch.set_num_threads(args.threads)
    try:
        results = _run_models(args, subsets, scorer)
    except JudgeError as exc:
        print(f"voicebench: error: {exc} (finished items are cached; rerun to resume)", file=sys.stderr)
        return 1
    if args.answers_only:
        print(f"answers cached under {args.out}; rerun without --answers-only (with a judge) to score them",
              file=sys.stderr)
        return 0
    print(to_json(results) if args.json else format_table(results))
    return 0


def _run_models(args, subsets, scorer) -> list:
    """Answer (and score) with every checkpoint in turn; their table rows."""
    from a2llm.eval.voicebench.runner import EngineAnswerer, run_model

    results, names = [], set()
    for checkpoint in args.checkpoint:
        if not Path(checkpoint).is_dir():
            raise FileNotFoundError(f"checkpoint folder {checkpoint} does not exist")
        answerer = EngineAnswerer(checkpoint, args.max_new_tokens, args.device)
        if answerer.name in names:
            raise ValueError(f"two checkpoints are both named {answerer.name!r}: their caches would collide")
        names.add(answerer.name)
        results.append(run_model(args.data, answerer, Path(args.out) / answerer.name, scorer, subsets, args.limit,
                                 progress=not args.no_progress and sys.stderr.isatty()))
        print(f"{answerer.name}: answers and verdicts in {Path(args.out) / answerer.name}", file=sys.stderr)
    return results
