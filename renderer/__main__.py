"""python -m renderer MOTION.npz [--audio WAV] [--compare OTHER.npz ...] [--labels A,B,...] -o OUT.mp4"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from a2llm.head import DEFAULT_HEAD, HEAD_CHOICES


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m renderer",
        description="Render FLAME-space motion (or FLAME-topology vertex sequences) to an mp4 with H.264 video "
                    "and AAC audio at 25 fps: T frames last exactly T/25 s. With --compare, the clips are "
                    "drawn side by side, labelled, on the first clip's timeline with one audio track.",
        epilog="Inputs are read with the importers of a2llm.motion: A²-LLM .npz (motion [T,58]), ARTalk "
               "(106-d), DiffPoseTalk (exp + pose), SMIRK outputs, or vertex sequences [T,5023,3].")
    ap.add_argument("motion", type=Path, help="motion file of the first (reference) system")
    ap.add_argument("-o", "--out", type=Path, required=True, help="output .mp4")
    ap.add_argument("--audio", type=Path, help="speech (.wav/.flac); default: audio embedded in MOTION, if any")
    ap.add_argument("--compare", type=Path, nargs="+", default=[], metavar="OTHER",
                    help="more motion files, drawn beside the first one")
    ap.add_argument("--labels", help="comma-separated captions, one per clip (default A,B,...)")
    ap.add_argument("--head", default=DEFAULT_HEAD,
                    help=f"head model for parameter motions: {' | '.join(HEAD_CHOICES)} | FLAME folder | head .npz "
                         "(default: human, the MakeHuman CC0 head with ARKit face units)")
    ap.add_argument("--size", type=int, default=512, help="tile size in pixels (default 512)")
    ap.add_argument("--kind", default="auto", help="input format for all files (default: auto-detect)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from a2llm.motion.importers import import_motion
    from renderer.render import render_clips

    try:
        if args.size < 16 or args.size % 2:
            raise ValueError(f"--size must be an even number ≥ 16 (got {args.size})")
        paths = [args.motion, *args.compare]
        clips = [import_motion(p, kind=args.kind) for p in paths]
        labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
        audio = sr = None
        if args.audio:
            audio, sr = _read_audio(args.audio)
        out = render_clips(clips, args.out, labels=labels, head=args.head, audio=audio, sample_rate=sr,
                           size=args.size, progress=not args.quiet)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({len(clips)} clip{'s' if len(clips) > 1 else ''}, {clips[0].num_frames} frames)")
    return 0


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as e:
        raise ValueError(f"cannot read audio {path}: {e}") from e
    return audio.mean(axis=1), int(sr)


if __name__ == "__main__":
    sys.exit(main())
