"""python -m a2llm.train SUBCOMMAND ..."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a2llm.checkpoint import update_manifest


def _register(args: argparse.Namespace, part: str, **fields) -> None:
    """Point ``args.register``'s a2llm.json at ``args.out`` as ``part`` (OUT must lie inside it)."""
    if args.register:
        rel = Path(args.out).resolve().relative_to(Path(args.register).resolve())
        update_manifest(args.register, part, str(rel), **fields)


def _tokenizer(args: argparse.Namespace) -> int:
    from a2llm.train.tokenizer import TrainConfig, train_tokenizer, with_overrides

    cfg = with_overrides(TrainConfig(), epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                         window=args.window)
    metrics = train_tokenizer(args.data, args.out, cfg, progress=not args.quiet)
    _register(args, "rvq", head="open")
    print(f"saved {args.out}: val MOD {metrics['mod_mm']:.3f} mm, temporal corr {metrics['temporal_corr']:.4f}, "
          f"codebook usage per level {[round(u, 2) for u in metrics['usage']]}")
    return 0


def _token2wav(args: argparse.Namespace) -> int:
    from a2llm.train.token2wav import TrainConfig, train_token2wav
    from a2llm.train.tokenizer import with_overrides

    cfg = with_overrides(TrainConfig(), epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed)
    metrics = train_token2wav(args.data, args.out, cfg, progress=not args.quiet)
    _register(args, "detokenizer")
    print(f"saved {args.out}: val log-mel L1 {metrics['val_l1']:.3f}, envelope corr {metrics['val_envelope_corr']:.3f}")
    return 0


def _common(p: argparse.ArgumentParser, part: str, epochs: int, batch_help: str, lr: str) -> None:
    """The options every trainer shares (defaults only appear in the help; each trainer's config holds them)."""
    p.add_argument("--data", required=True, help="FLAME-QA folder (e.g. from python -m a2llm.data.nano)")
    p.add_argument("--out", required=True, help="output folder (config.json, model.safetensors, log)")
    p.add_argument("--epochs", type=int, help=f"epochs (default {epochs})")
    p.add_argument("--batch", type=int, help=batch_help)
    p.add_argument("--lr", type=float, help=f"AdamW learning rate (default {lr})")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--register", help=f"A²-LLM checkpoint folder whose a2llm.json should point at OUT as its {part} part")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m a2llm.train", description="Train A²-LLM components.")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tokenizer", help="train the residual motion tokenizer (RVQ-VAE) on a FLAME-QA folder",
                       description="Train the RVQ-VAE motion tokenizer (seed §5.1): AdamW, random 40-frame windows, "
                                   "validation each epoch, resumable (re-run the same command), HF-style save.")
    _common(t, "rvq", epochs=30, batch_help="windows per step (default 32)", lr="1e-4")
    t.add_argument("--window", type=int, help="frames per training window (default 40)")
    t.set_defaults(run=_tokenizer)
    w = sub.add_parser("token2wav", help="train the nano token2wav (phone frames -> mel -> Griffin-Lim)",
                       description="Train nano token2wav on a FLAME-QA folder: L1 on log-mel, AdamW, validation "
                                   "each epoch, resumable, HF-style save.")
    _common(w, "detokenizer", epochs=40, batch_help="utterances per step (default 16)", lr="1e-3")
    w.set_defaults(run=_token2wav)
    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
