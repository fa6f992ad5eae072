"""Where does A²-LLM-nano's upper-face jitter come from? (issue 21, "a smooth upper face")

    OMP_NUM_THREADS=1 python scripts/experiments/jitter_source.py [--checkpoint DIR] [--data DIR] [--n 96]

On the first N test samples, the upper-face jitter (metrics.upper_face_jitter: mean |Δ²d| over the ground truth's)
and UFD (eq. 12) of:
  truth                  the procedural ground truth;
  rvq round trip         the RVQ-VAE's encode -> decode of the truth (the tokenizer alone);
  rvq, coarse k levels   decode of the truth's codes with only the first k quantizers (k = 1, 2, 3);
  nano                   the connector's codes on the reference timeline, decoded (what the tables score);
  nano, expected latent  the same connector, decoded from the latent its code distributions expect
                         (motion_decode="expected", a2llm/motion/rvq.py expected_latent);
  nano codes, truth rvq  jitter of frames at segment joins (first frame of each S*5-frame segment) vs inside.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="checkpoints/a2llm-nano")
    ap.add_argument("--data", default="data/flame-qa-nano")
    ap.add_argument("--n", type=int, default=96)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from a2llm.eval import metrics as M
    from a2llm.generate import Generator
    from a2llm.head import load_head
    from a2llm.model import A2LLM, load_checkpoint_tokenizer
    from a2llm.train.data import MemoryDataset

    samples = MemoryDataset(args.data, "test").samples[:args.n]
    head = load_head("open")
    model = A2LLM.from_pretrained(args.checkpoint)
    tok = load_checkpoint_tokenizer(args.checkpoint)
    rvq = model.motion_tokenizer
    gen = Generator(model, tok)
    gen_expected = Generator(model, tok, motion_decode="expected")
    nano, expected = [], []
    for i in range(0, len(samples), 16):
        nano += gen.motion_for_reference(samples[i:i + 16])
        expected += gen_expected.motion_for_reference(samples[i:i + 16])
    seg = model.connector.cfg.segment_tokens * model.connector.cfg.group

    def d_of(m):
        return M.upper_face_displacement(head.vertices(m, canonical=True), head)

    rows: dict[str, list] = {}
    joins, inside = [], []
    for s, pred, pred_e in zip(samples, nano, expected):
        gt = s.motion
        codes = rvq.encode(gt)
        variants = {"truth": gt, "rvq round trip": rvq.decode(codes)[:len(gt)], "nano": pred,
                    "nano, expected latent": pred_e}
        for k in (1, 2, 3):
            variants[f"rvq, first {k} levels"] = _decode_levels(rvq, codes, k)[:len(gt)]
        dg = d_of(gt)
        for name, m in variants.items():
            n = min(len(m), len(gt))
            d = d_of(m[:n])
            err = M.upper_face_error_mm(head.vertices(m[:n], canonical=True), head.vertices(gt[:n], canonical=True),
                                        head)
            rows.setdefault(name, []).append((M.upper_face_jitter(d, dg[:n]), M.ufd_from_displacement(d), err,
                                              np.abs(np.diff(d, n=2, axis=0)).mean(),
                                              np.abs(np.diff(dg[:n], n=2, axis=0)).mean(),
                                              M.compute_metrics(m[:n], gt[:n], head)["mod_mm"]))
        dn = d_of(pred)
        acc = np.abs(np.diff(dn, n=2, axis=0)).mean(axis=1)       # [T-2], frame t+1 is the centre
        centre = np.arange(1, len(acc) + 1)
        at_join = (centre % seg == 0)
        joins += list(acc[at_join])
        inside += list(acc[~at_join])
    out = {name: {"upper_face_jitter": float(np.nanmean([r[0] for r in v])),
                  "upper_face_jitter_pooled": float(np.sum([r[3] for r in v]) / np.sum([r[4] for r in v])),
                  "ufd": float(np.mean([r[1] for r in v])), "upper_face_err_mm": float(np.mean([r[2] for r in v])),
                  "mod_mm": float(np.mean([r[5] for r in v]))}
           for name, v in rows.items()}
    out["nano segment joins"] = {"mean_abs_acc_at_joins_mm": 1000 * float(np.mean(joins)),
                                 "mean_abs_acc_inside_mm": 1000 * float(np.mean(inside)), "segment_frames": seg}
    print(json.dumps(out, indent=2))
    return 0


def _decode_levels(rvq, codes: np.ndarray, k: int) -> np.ndarray:
    """[N, Nq] codes -> [N*G, 58] motion decoded from the first ``k`` quantizers only (the residual sum cut)."""
    model = rvq.model
    idx = torch.as_tensor(codes, dtype=torch.long)[None]
    with torch.no_grad():
        parts = model.quantizer.get_codes_from_indices(idx)          # [Nq, 1, N, d]
        q = model.quantizer.project_out(parts[:k].sum(0))
        return (model.decoder(q) * model.std + model.mean)[0].numpy()


if __name__ == "__main__":
    sys.exit(main())
