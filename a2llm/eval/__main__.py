"""``python -m a2llm.eval <subcommand>``: the project's evaluation entry point.

Each subcommand lives in its own module, which defines ``register(subparsers)``: it adds its parser
and sets ``func`` (``args -> exit status``) as a default. Adding a subcommand is one line in
:data:`SUBCOMMANDS`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that each register one subcommand.
SUBCOMMANDS = (
    "a2llm.eval.motion_cli",
    "a2llm.eval.tokenizer_cli",
    "a2llm.eval.tables",
    "a2llm.eval.bench",
    "a2llm.eval.voicebench.cli",
    "a2llm.eval.dialogue",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="python -m a2llm.eval",
                                     description="A²-LLM evaluation tools; `<subcommand> --help` for each.")
    subparsers = parser.add_subparsers(dest="command", metavar="<subcommand>", required=True)
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit status.

    Bad input files (missing, wrong format, nothing to pair) end with ``error: ...`` on stderr and
    status 1 instead of a traceback; argument mistakes end with argparse's usage message, status 2.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError) as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
