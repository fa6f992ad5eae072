"""python -m a2llm.data.nano --out DIR --num N [--seed S] [--workers W] [--question-voices mixed|espeak] [--read]"""
from __future__ import annotations

import argparse
import sys
import time

from a2llm.data.nano.generate import NanoConfig, generate
from a2llm.data.nano.read import generate_read


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m a2llm.data.nano",
        description="Generate FLAME-QA-nano: dialogues of 1-12 turns of its world (36 QA templates across six "
                    "emotions, openers, the visitor's feelings, follow-ups, off-domain questions with honest "
                    "fallbacks; a sample is the last turn, the earlier ones text context); question audio by "
                    "espeak-ng, flite and festival voices with augmentation (or espeak-ng only); answer speech by "
                    "espeak-ng with phoneme timings; "
                    "25 Hz phone-frame tokens; procedural motion on the open head (mouth from the phones, upper "
                    "face and head from the text's emotion). Deterministic for a seed; re-running continues a "
                    "partial folder.")
    ap.add_argument("--out", required=True, help="output folder (created; an existing one is continued)")
    ap.add_argument("--num", type=int, required=True, help="number of samples (ids 0..N-1)")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--shard-size", type=int, default=500, help="samples per shard (default 500)")
    ap.add_argument("--question-voices", choices=("mixed", "espeak"), default="mixed",
                    help="who says FLAME-QA-nano's questions: mixed = espeak-ng, flite and festival voices "
                         "(a2llm/data/nano/voices.py, default); espeak = espeak-ng only, as before issue 21")
    ap.add_argument("--read", action="store_true",
                    help="write the read-aloud corpus instead (FLAME-QA-nano-read: random sentences of a general "
                         "vocabulary, for learning to read new text; a2llm/data/nano/read.py)")
    args = ap.parse_args(argv)
    if args.num <= 0:
        ap.error("--num must be positive")
    t0 = time.perf_counter()
    make = generate_read if args.read else generate
    cfg = NanoConfig(seed=args.seed, question_voices=args.question_voices)
    path = make(args.out, args.num, cfg, workers=args.workers, shard_size=args.shard_size)
    dt = time.perf_counter() - t0
    print(f"wrote {path} ({args.num} samples requested) in {dt:.1f} s: {60 * args.num / dt:.0f} samples/minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
