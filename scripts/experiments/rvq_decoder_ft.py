"""Decoder-only fine-tuning of a trained motion tokenizer with the upper-face velocity/acceleration term (issue 21):
every clip keeps its codes (encoder, codebooks and normalisation frozen), so a connector trained on them stays valid.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/experiments/rvq_decoder_ft.py --rvq RUN/rvq \
        --data data/flame-qa-nano --weights 0 1e6 1e7 --epochs 1

Prints, per weight, the validation split's MOD, temporal correlation and pooled upper-face jitter of the RVQ round
trip (a2llm/train/tokenizer.py evaluate_reconstruction) — weight 0 is the control: the same extra epochs without
the term.
"""
import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from a2llm.train.tokenizer import load_tokenizer_config, train_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rvq", required=True, help="a trained tokenizer folder (with train_config.json)")
    ap.add_argument("--data", default="data/flame-qa-nano")
    ap.add_argument("--work", default="/tmp/rvq_decoder_ft")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1e6, 1e7])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--upsample", help="a new decoder upsampling for the fine-tune (e.g. lerp)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = load_tokenizer_config(Path(args.rvq) / "train_config.json")
    before = json.loads((Path(args.rvq) / "val_metrics.json").read_text())
    print(json.dumps({"weight": "before", **{k: before[k] for k in ("mod_mm", "temporal_corr", "upper_face_jitter")}}))
    for w in args.weights:
        cfg = replace(base.train, epochs=args.epochs, lr=args.lr, init=str(args.rvq), decoder_only=True,
                      loss=replace(base.train.loss, upper_dynamics=w))
        t = time.time()
        model = replace(base.model, upsample=args.upsample) if args.upsample else base.model
        val = train_tokenizer(args.data, f"{args.work}/w{w:g}", cfg, model, progress=False)
        print(json.dumps({"weight": w, "upsample": model.upsample, "seconds": round(time.time() - t),
                          **{k: val[k] for k in ("mod_mm", "temporal_corr", "upper_face_jitter")}}), flush=True)


if __name__ == "__main__":
    main()
