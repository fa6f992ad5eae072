"""Render one FLAME-QA sample: an mp4 with its speech, and a strip of frames (docs/DATA.md's picture).

    python scripts/render_sample.py DATA_DIR [--id nano-000006] [--out docs/data] [--frames 8] [--head human]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2llm.data import load_flame_qa  # noqa: E402
from a2llm.head import DEFAULT_HEAD, load_head  # noqa: E402
from a2llm.motion.io import MotionClip  # noqa: E402
from renderer.grid import label_band  # noqa: E402
from renderer.offscreen import HeadRenderer  # noqa: E402
from renderer.render import render_clips  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--id", help="sample id (default: the first happy sample with a laugh)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "data")
    ap.add_argument("--frames", type=int, default=8, help="frames in the strip")
    ap.add_argument("--head", default=DEFAULT_HEAD, help=f"head to render (default: {DEFAULT_HEAD})")
    args = ap.parse_args()
    ds = load_flame_qa(args.data)
    ids = [ds.record(i)["id"] for i in range(len(ds))]
    if args.id:
        index = ids.index(args.id)
    else:
        index = next(i for i in range(len(ds)) if "laugh" in ds.record(i)["meta"].get("cues", []))
    s = ds[index]
    args.out.mkdir(parents=True, exist_ok=True)
    video = render_clips([MotionClip(s.motion, audio=s.response_audio, sample_rate=s.sample_rate)],
                         args.out / f"{s.id}.mp4", head=args.head, size=384, progress=False)
    head = load_head(args.head)
    picks = np.linspace(0, len(s.motion) - 1, args.frames).round().astype(int)
    with HeadRenderer.for_head(head, size=256) as r:
        tiles = [r.render(v) for v in head.vertices(s.motion[picks])]
    captions = label_band([f"{p / 25:.2f} s" for p in picks], 256, len(picks), 28)
    strip = np.concatenate([np.concatenate([c, t], 0) for c, t in zip(captions, tiles)], 1)
    iio.imwrite(args.out / f"{s.id}_strip.png", strip)
    print(f"{s.id} [{s.emotion}] Q: {s.question_text!r} A: {s.response_text!r}")
    print(f"wrote {video} and {args.out / (s.id + '_strip.png')}")


if __name__ == "__main__":
    main()
