"""Benchmark the offscreen renderer: frames/s at 512² on this machine, and where the time goes.

    python scripts/bench_render.py [--frames 250] [--size 512] [--head human open]

Prints skinning, per-frame render stages (normals, buffer upload, draw + read-back) and mp4
encoding, each as frames/s, measured over the same motion in one run — for each head given, one after the
other in the same process, so their figures can be compared (on a shared machine they are still noisy).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2llm.head import load_head  # noqa: E402
from renderer.offscreen import HeadRenderer, vertex_normals  # noqa: E402
from renderer.video import write_mp4  # noqa: E402


def synthetic_motion(T: int) -> np.ndarray:
    """Speech-like motion: jaw at ~4 Hz, smile and brows drifting, a little head sway, blinks."""
    t = np.arange(T) / 25.0
    m = np.zeros((T, 58), np.float32)
    m[:, 50] = 0.12 * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t))
    m[:, 0] = 1.2 * np.sin(2 * np.pi * 0.3 * t)
    m[:, 4] = 0.8 * np.sin(2 * np.pi * 0.5 * t)
    m[:, 53:56] = 0.1 * np.sin(2 * np.pi * np.array([0.2, 0.3, 0.1]) * t[:, None])
    m[:, 56:58] = (np.abs(np.sin(2 * np.pi * 0.25 * t)) > 0.97)[:, None]
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--head", nargs="+", default=["human", "open"], help="heads to time (default: human open)")
    args = ap.parse_args()
    summary = [bench(spec, args.frames, args.size) for spec in args.head]
    if len(summary) > 1:
        print("\nsummary (frames/s at %d²):" % args.size)
        for name, render_fps, e2e_fps in summary:
            print(f"  {name:<22} render {render_fps:6.1f}   end to end {e2e_fps:6.1f}")


def bench(spec: str, frames: int, size: int) -> tuple[str, float, float]:
    """Time one head; prints its table and returns (name, render frames/s, end-to-end frames/s)."""
    head = load_head(spec)
    motion = synthetic_motion(frames)
    T = frames

    t0 = time.perf_counter()
    verts = head.vertices(motion)
    t_skin = time.perf_counter() - t0

    r = HeadRenderer.for_head(head, size=size)
    for v in verts[:5]:                       # warm-up: shader compile, first upload
        r.render(v)
    t0 = time.perf_counter()
    for v in verts:
        vertex_normals(v, r.faces, r._normal_op)
    t_normals = time.perf_counter() - t0
    t0 = time.perf_counter()
    for v in verts:
        r._upload(v)
    t_upload = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in verts:
        r._gl.render(r.scene)
    t_draw = time.perf_counter() - t0
    t0 = time.perf_counter()
    images = [r.render(v) for v in verts]
    t_render = time.perf_counter() - t0
    r.close()

    with tempfile.TemporaryDirectory() as d:
        audio = np.zeros(int(T / 25 * 16000), np.float32)
        t0 = time.perf_counter()
        write_mp4(os.path.join(d, "bench.mp4"), images, audio=audio, sample_rate=16000)
        t_encode = time.perf_counter() - t0

    fps = lambda s: T / s  # noqa: E731
    print(f"head {head.name}: {head.num_vertices} vertices, {len(head.faces)} faces; {T} frames at {size}²; "
          f"platform {os.environ.get('PYOPENGL_PLATFORM')}, {os.cpu_count()} cores")
    print(f"{'stage':<34}{'ms/frame':>10}{'frames/s':>10}")
    rows = [("skinning (LBS, batched)", t_skin), ("  normals", t_normals), ("  buffer upload", t_upload),
            ("  draw + read-back", t_draw), ("render (normals+upload+draw)", t_render),
            ("mp4 encode (H.264 + AAC)", t_encode),
            ("end to end (skin+render+encode)", t_skin + t_render + t_encode)]
    for name, s in rows:
        print(f"{name:<34}{1000 * s / T:>10.2f}{fps(s):>10.1f}")
    return head.name, fps(t_render), fps(t_skin + t_render + t_encode)


if __name__ == "__main__":
    main()
