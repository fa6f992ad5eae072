"""Render reference poses of heads into docs/head/ (the PNGs linked from README and docs/HEAD.md).

    python scripts/head_previews.py [--head human human-male open] [--out docs/head] [--size 512]

The open head's poses go straight into docs/head/ (as before); every other head gets a folder of its own,
e.g. docs/head/human/neutral.png, docs/head/human-male/smile.png, with an overview strip of all its poses.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2llm.head import load_head  # noqa: E402
from a2llm.head.open_head import EXPRESSION_NAMES  # noqa: E402
from a2llm.motion.layout import EYELIDS, JAW  # noqa: E402
from renderer.offscreen import HeadRenderer  # noqa: E402


def poses() -> dict[str, np.ndarray]:
    def m(**kw) -> np.ndarray:
        x = np.zeros(58, np.float32)
        for name, v in kw.items():
            x[EXPRESSION_NAMES.index(name)] = v
        return x
    jaw, lids = m(), m()
    jaw[JAW.start] = 0.3
    lids[EYELIDS] = 1.0
    return {"neutral": m(), "jaw_open_0.3rad": jaw, "smile": m(smile=2.5, cheek_raise=1.0),
            "brows_raised": m(brow_raise=2.5), "eyes_closed": lids}


def render_head(spec: str, out: Path, size: int) -> list[Path]:
    head = load_head(spec)
    folder = out if spec == "open" else out / spec
    folder.mkdir(parents=True, exist_ok=True)
    p = poses()
    verts = head.vertices(np.stack(list(p.values())))
    with HeadRenderer.for_head(head, size=size) as r:
        frames = [r.render(v) for v in verts]
    paths = []
    for name, frame in zip(p, frames):
        iio.imwrite(folder / f"{name}.png", frame)
        paths.append(folder / f"{name}.png")
    half = [f[::2, ::2] for f in frames]
    iio.imwrite(folder / "overview.png", np.concatenate(half, axis=1))
    return paths + [folder / "overview.png"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", nargs="+", default=["human", "human-male"],
                    help="heads to render (default: both identities of the human head)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "head")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    for spec in args.head:
        for path in render_head(spec, args.out, args.size):
            print(path)


if __name__ == "__main__":
    main()
