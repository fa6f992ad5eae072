"""``python -m a2llm.eval tokenizer``: held-out reconstruction quality and decode speed of a motion tokenizer."""
from __future__ import annotations

import json
import time

import numpy as np


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tokenizer", help="evaluate a motion tokenizer on a FLAME-QA split",
        description="Encode and decode every clip of a split and report reconstruction MOD (mm) and temporal "
                    "correlation of mouth opening (canonical space, as in the motion metrics), parameter MSE, "
                    "per-level codebook usage and perplexity, and decode speed (frames/s, full and streaming).")
    p.add_argument("--checkpoint", required=True, help="tokenizer folder or A²-LLM checkpoint folder (a2llm.json)")
    p.add_argument("--data", required=True, help="FLAME-QA folder")
    p.add_argument("--split", default="test", help="split to evaluate (default test: held-out voices and templates)")
    p.add_argument("--limit", type=int, help="evaluate at most this many clips")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def decode_speed(tok, codes_list: list[np.ndarray]) -> tuple[float, float]:
    """Frames decoded per second, whole clips and streaming 2 tokens (0.4 s) at a time."""
    frames = sum(len(c) * tok.group for c in codes_list)
    t0 = time.perf_counter()
    for c in codes_list:
        tok.decode(c)
    full = frames / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for c in codes_list:
        s = tok.streaming()
        for i in range(0, len(c), 2):
            s.step(c[i:i + 2])
    return full, frames / (time.perf_counter() - t0)


def run(args) -> int:
    from a2llm.data import load_flame_qa
    from a2llm.head import load_head
    from a2llm.motion.tokenizer import MotionTokenizer
    from a2llm.train.tokenizer import evaluate_reconstruction

    tok = MotionTokenizer.from_pretrained(args.checkpoint)
    ds = load_flame_qa(args.data, split=args.split)
    n = min(len(ds), args.limit or len(ds))
    clips = [ds.motion(i) for i in range(n)]
    head = load_head(tok.config.head)
    m = evaluate_reconstruction(tok, clips, head)
    full, streaming = decode_speed(tok, [tok.encode(c) for c in clips])
    result = {"split": args.split, "clips": n, **m, "min_usage": min(m["usage"]),
              "decode_frames_per_s": full, "streaming_decode_frames_per_s": streaming}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.split}: {n} clips, head {head.name}")
    print(f"  reconstruction MOD        {m['mod_mm']:.3f} mm")
    print(f"  temporal correlation      {m['temporal_corr']:.4f}")
    print(f"  parameter MSE             {m['param_mse']:.5f}")
    print(f"  codebook usage per level  {' '.join(f'{u:.2f}' for u in m['usage'])}")
    print(f"  perplexity per level      {' '.join(f'{p:.0f}' for p in m['perplexity'])}")
    print(f"  decode speed              {full:,.0f} frames/s (whole clips), {streaming:,.0f} frames/s (2-token steps)")
    return 0
