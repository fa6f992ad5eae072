"""RVQ decoder upsampling A/B (docs/TOKENIZER.md, "Decoder upsampling"): train the nano tokenizer briefly with one
upsampling and one parameter-space smoothing weight, print the held-out reconstruction figures.

    OMP_NUM_THREADS=1 python -m a2llm.data.nano --out /tmp/tokdata --num 800 --workers 1
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/experiments/rvq_upsample.py repeat 10 [--data /tmp/tokdata]
"""
import argparse
import json
import time
from dataclasses import replace

import torch

from a2llm.motion.rvq import RVQConfig
from a2llm.train.tokenizer import TrainConfig, train_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("upsample", choices=("transpose", "repeat"))
    ap.add_argument("param_dynamics", type=float)
    ap.add_argument("--data", default="/tmp/tokdata")
    ap.add_argument("--work", default="/tmp/rvq_ab")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = TrainConfig()
    cfg = replace(cfg, epochs=args.epochs, loss=replace(cfg.loss, param_dynamics=args.param_dynamics))
    t = time.time()
    val = train_tokenizer(args.data, f"{args.work}/{args.upsample}_{args.param_dynamics:g}", cfg,
                          RVQConfig(upsample=args.upsample), progress=False)
    keys = ("mod_mm", "temporal_corr", "upper_face_jitter", "param_mse")
    print(json.dumps({"upsample": args.upsample, "param_dynamics": args.param_dynamics, "seconds": round(time.time() - t),
                      **{k: val[k] for k in keys}}))


if __name__ == "__main__":
    main()
