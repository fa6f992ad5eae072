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
    from a2llm.train.tokenizer import TokenizerConfig, load_tokenizer_config, train_tokenizer, with_overrides

    base = load_tokenizer_config(args.config) if args.config else TokenizerConfig()
    cfg = with_overrides(base.train, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                         window=args.window, init=args.init, decoder_only=args.decoder_only or None)
    metrics = train_tokenizer(args.data, args.out, cfg, model_cfg=base.model, progress=not args.quiet)
    _register(args, "rvq", head=base.model.head)
    print(f"saved {args.out}: val MOD {metrics['mod_mm']:.3f} mm, temporal corr {metrics['temporal_corr']:.4f}, "
          f"upper-face jitter {metrics['upper_face_jitter']:.3f}, "
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


def _curriculum(args: argparse.Namespace) -> int:
    from a2llm.train.curriculum import Curriculum, load_config

    cfg = load_config(args.config, data=args.data, out=args.out, rvq=args.rvq, read_data=args.read_data,
                      encoder=args.encoder)
    cur = Curriculum(cfg, progress=not args.quiet)
    final = cur.run(only=args.stage)
    if not args.stage and cur.is_main:
        print(f"curriculum finished: the model is {final}")
    return 0


def _encoder(args: argparse.Namespace) -> int:
    from a2llm.train.encoder import EncoderTrainConfig, train_encoder
    from a2llm.train.tokenizer import with_overrides

    cfg = with_overrides(EncoderTrainConfig(), steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    m = train_encoder(args.data, args.out, read_data=args.read_data, cfg=cfg, progress=not args.quiet)
    print(f"saved {args.out}: frame accuracy val {m['val']['frame_accuracy']:.3f} / held-out voices "
          f"{m['test_held_out_voices']['frame_accuracy']:.3f}, phone error rate val {m['val']['per']:.3f} / "
          f"held-out voices {m['test_held_out_voices']['per']:.3f}")
    return 0


def _audio_only(args: argparse.Namespace) -> int:
    from a2llm.baselines.audio_only import train_audio_only

    summary = train_audio_only(args.data, args.rvq, args.out, steps=args.steps, batch=args.batch, lr=args.lr,
                               seed=args.seed, progress=not args.quiet)
    print(f"saved {args.out}: {summary['steps']} steps in {summary['seconds']:.0f} s")
    return 0


def _nano(args: argparse.Namespace) -> int:
    from a2llm.train.nano import assemble, load_nano_config, run_nano

    cfg = load_nano_config(args.config, out=args.out, work=args.work, data=args.data, processes=args.processes)
    if args.assemble_only:
        assemble(cfg)
    else:
        run_nano(cfg, quiet=args.quiet)
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
                                   "the loss of Eq. 7-10 (parameters, lips/face vertices, velocity and acceleration "
                                   "of the full vertex sequence), validation each epoch, resumable (re-run the same "
                                   "command), HF-style save.")
    _common(t, "rvq", epochs=30, batch_help="windows per step (default 32)", lr="1e-4")
    t.add_argument("--window", type=int, help="frames per training window (default 40)")
    t.add_argument("--config", help="tokenizer config JSON: training settings, loss weights and model "
                                    "hyper-parameters (e.g. configs/full/tokenizer.json, the paper's); the options "
                                    "above override its training settings (default: the nano settings)")
    t.add_argument("--init", help="start from this trained tokenizer folder (its model hyper-parameters: pass its "
                                  "train_config.json as --config)")
    t.add_argument("--decoder-only", action="store_true",
                   help="with --init: train the decoder alone; encoder, codebooks and normalisation stay frozen, so "
                        "every clip keeps its codes (a model trained on them stays valid)")
    t.set_defaults(run=_tokenizer)
    w = sub.add_parser("token2wav", help="train the nano token2wav (phone frames -> mel -> Griffin-Lim)",
                       description="Train nano token2wav on a FLAME-QA folder: L1 on log-mel, AdamW, validation "
                                   "each epoch, resumable, HF-style save.")
    _common(w, "detokenizer", epochs=40, batch_help="utterances per step (default 16)", lr="1e-3")
    w.set_defaults(run=_token2wav)
    c = sub.add_parser("curriculum", help="train backbone + LoRA + connector through the staged curriculum",
                       description="Run the curriculum of a config file (configs/nano/curriculum.json): pre-training "
                                   "(nano), stage 1 connector pre-training, stage 2 LoRA reset + joint tuning, stage 3 "
                                   "affective tuning. Each stage checkpoints and resumes (re-run the same command); "
                                   "finished stages are skipped. Multi-process: torchrun --nproc_per_node N -m "
                                   "a2llm.train curriculum ... (docs/NANO.md).")
    c.add_argument("--config", required=True, help="curriculum JSON (stages inline or as stage JSON files)")
    c.add_argument("--data", help="override the config's FLAME-QA folder")
    c.add_argument("--out", help="override the config's output folder")
    c.add_argument("--rvq", help="override the config's motion tokenizer (checkpoint or rvq folder)")
    c.add_argument("--read-data", help="override the config's read-aloud corpus (python -m a2llm.data.nano --read)")
    c.add_argument("--encoder", help="override the config's phone pre-trained encoder (python -m a2llm.train encoder)")
    c.add_argument("--stage", help="run only this stage (its init stage must be done)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(run=_curriculum)
    e = sub.add_parser("encoder", help="phone pre-training of the nano audio encoder (before the curriculum)",
                       description="Fit the nano audio encoder alone: its 25 Hz frames through a linear head onto the "
                                   "phone classes of the spoken questions (FLAME-QA-nano's meta.question_phones), "
                                   "with mel-frequency warping and band masking; reports frame accuracy and phone "
                                   "error rate on validation and held-out-voice questions. The curriculum starts "
                                   "its encoder from OUT (--encoder / 'encoder' in its config).")
    e.add_argument("--data", required=True, help="FLAME-QA-nano folder (train: fitting; val, test: metrics)")
    e.add_argument("--read-data", help="also fit on the read-aloud corpus's questions")
    e.add_argument("--out", required=True, help="output folder (a finished one is kept as it is)")
    e.add_argument("--steps", type=int, help="optimizer steps (default 1500)")
    e.add_argument("--batch", type=int, help="clips per step (default 32)")
    e.add_argument("--lr", type=float, help="AdamW peak learning rate (default 2e-3)")
    e.add_argument("--seed", type=int, help="seed (default 0)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(run=_encoder)
    a = sub.add_parser("audio-only", help="train the audio-only avatar baseline (speech -> connector -> motion)",
                       description="Train the FaceFormer-style audio-only baseline: the nano audio encoder on the "
                                   "answer speech drives the same Motion Connector and motion tokenizer (no LLM).")
    a.add_argument("--data", required=True, help="FLAME-QA folder")
    a.add_argument("--rvq", required=True, help="motion tokenizer (checkpoint or rvq folder)")
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--steps", type=int, default=500, help="optimizer steps (default 500)")
    a.add_argument("--batch", type=int, default=16, help="answers per step (default 16)")
    a.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (default 2e-3)")
    a.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.set_defaults(run=_audio_only)
    n = sub.add_parser("nano", help="train A²-LLM-nano end to end (one command, resumable)",
                       description="Corpus, token2wav, motion tokenizer, curriculum (torchrun, N CPU processes), "
                                   "audio-only baseline, then the checkpoint folder. Every step resumes; finished "
                                   "steps are skipped (docs/NANO.md).")
    n.add_argument("--config", default="configs/nano/nano.json", help="pipeline config (default configs/nano/nano.json)")
    n.add_argument("--data", help="override the FLAME-QA folder")
    n.add_argument("--work", help="override the working folder (resumable states)")
    n.add_argument("--out", help="override the checkpoint folder")
    n.add_argument("--processes", type=int, help="curriculum processes (default 2)")
    n.add_argument("--assemble-only", action="store_true", help="only (re)build the checkpoint folder from WORK")
    n.add_argument("--quiet", action="store_true", help="no progress bars")
    n.set_defaults(run=_nano)
    args = ap.parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
