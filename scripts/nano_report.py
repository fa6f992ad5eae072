"""Figures and tables of docs/NANO.md from the committed checkpoint (re-run after training).

    python scripts/nano_report.py [--checkpoint checkpoints/a2llm-nano] [--data data/flame-qa-nano] [--out docs/nano]

Writes OUT/tables.json (python -m a2llm.eval tables --save), OUT/emotion.png, OUT/curriculum.png and prints the
markdown tables (tables 3, 4, 6, curriculum stages, PER, accuracy, training times) for the document.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="checkpoints/a2llm-nano")
    ap.add_argument("--data", default="data/flame-qa-nano")
    ap.add_argument("--out", default="docs/nano")
    ap.add_argument("--gen-limit", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from a2llm.eval.tables import TABLE_COLUMNS, TABLE_TITLES, markdown_table, run_tables
    from a2llm.train.nano import plot_curriculum

    plot_curriculum(args.checkpoint, out / "curriculum.png")
    t = time.time()
    r = run_tables(args.checkpoint, args.data, gen_limit=args.gen_limit, figure=out / "emotion.png")
    (out / "tables.json").write_text(json.dumps(r, indent=2) + "\n")
    print(f"(evaluation: {time.time() - t:.0f} s)\n")
    for name in TABLE_COLUMNS:
        print(f"{TABLE_TITLES[name]}\n\n{markdown_table(name, r[name])}\n")
    print(f"\nTTS PER {r['tts_per_split']}\nAQAA accuracy {r['aqaa_accuracy']:.3f} on {r['num_generated']['aqaa']}")
    summary = json.loads((Path(args.checkpoint) / "training" / "summary.json").read_text())
    print("\n" + json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
