"""Motion or vertex clips -> rendered mp4 (one avatar, or a labelled grid on one timeline)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from a2llm.head import DEFAULT_HEAD, HeadModel, load_head
from a2llm.motion.io import MotionClip, VertexClip
from renderer.grid import GridComposer
from renderer.offscreen import HeadRenderer
from renderer.video import FPS, write_mp4

CHUNK = 64  # frames skinned at once: bounds memory for long clips
#: GL work is serialised: an EGL context is current on one thread at a time, and closing a renderer
#: terminates the display shared by all renderers of the process.
RENDER_LOCK = threading.RLock()

# Every GL call of the app runs on this one thread: an EGL context belongs to the thread that made it current
# (another thread gets EGL_BAD_ACCESS), and web-server handlers run on whichever worker thread is free.
_GL_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gl")
_persistent: dict[tuple[int, int], HeadRenderer] = {}


def on_gl_thread(fn, *args, **kwargs):
    """Run ``fn`` on the process's GL thread and return its result (directly when already there)."""
    if threading.current_thread().name.startswith("gl_"):
        return fn(*args, **kwargs)
    return _GL_THREAD.submit(fn, *args, **kwargs).result()


def _drop_persistent() -> None:
    """Forget the kept renderers: another renderer's close() is about to terminate the shared display."""
    for r in _persistent.values():
        try:
            r.close()
        except Exception:                                   # noqa: BLE001 (already dead with the display)
            pass
    _persistent.clear()


def render_frames(head: HeadModel, verts: np.ndarray, size: int = 512) -> list[np.ndarray]:
    """[n, V, 3] vertices -> n RGB frames, on the GL thread with a renderer kept open between calls (creating
    and closing one costs ~0.4 s, too much for every streamed motion chunk)."""
    def work():
        key = (id(head), int(size))
        if key not in _persistent:
            _persistent[key] = HeadRenderer.for_head(head, size=size)
        r = _persistent[key]
        return [r.render(v) for v in verts]

    return on_gl_thread(work)


class _Track:
    """One system on the timeline: yields its [V, 3] vertices frame by frame, holding its last frame
    when it is shorter than the timeline and dropping frames beyond it."""

    def __init__(self, clip: MotionClip | VertexClip, head: HeadModel):
        if isinstance(clip, VertexClip):
            self.head = _head_for_vertices(clip.vertices.shape[1], head)
            self.length = len(clip.vertices)
            self._get = lambda a, b: clip.vertices[a:b]
        else:
            self.head = head
            self.length = len(clip.motion)
            self._get = lambda a, b: head.vertices(clip.motion[a:b], canonical=False)

    def frames(self, num_frames: int) -> Iterator[np.ndarray]:
        last = None
        for start in range(0, min(num_frames, self.length), CHUNK):
            chunk = self._get(start, min(start + CHUNK, num_frames, self.length))
            yield from chunk
            last = chunk[-1]
        for _ in range(max(0, num_frames - self.length)):
            yield last


def _head_for_vertices(num_vertices: int, head: HeadModel) -> HeadModel:
    if num_vertices == head.num_vertices:
        return head
    if num_vertices == 5023:
        try:
            return load_head("flame")
        except FileNotFoundError as e:
            raise FileNotFoundError(f"vertex sequences with 5023 vertices have FLAME topology and need FLAME's "
                                    f"faces to be drawn: {e}") from e
    raise ValueError(f"vertex sequence has {num_vertices} vertices: neither the chosen head "
                     f"({head.name}, {head.num_vertices}) nor FLAME (5023)")


def render_clips(clips: Sequence[MotionClip | VertexClip], out: str | Path, labels: Sequence[str] | None = None,
                 head: HeadModel | str = DEFAULT_HEAD, audio: np.ndarray | None = None, sample_rate: int | None = None,
                 size: int = 512, progress: bool = True) -> Path:
    """Render one clip, or several side by side, to an mp4 with one audio track.

    The first clip sets the timeline (T frames, T / 25 s); others are cut or hold their last frame.
    Audio defaults to the first clip's embedded audio.

    Args:
        clips: motion clips ([T, 58]) or vertex clips ([T, V, 3]).
        out: output .mp4 path.
        labels: captions for a grid (defaults to "A", "B", ...); ignored for a single clip.
        head: head model (or spec) used to skin motion clips.
        audio, sample_rate: speech to mux; overrides the clip's own.
        size: tile size in pixels.
        progress: show a progress bar.
    """
    if not clips:
        raise ValueError("nothing to render: no clips given")
    head = load_head(head) if isinstance(head, str) else head
    def work():
        with RENDER_LOCK:
            _drop_persistent()
            return _render_locked(clips, out, labels, head, audio, sample_rate, size, progress)

    return on_gl_thread(work)


def render_still(motion: np.ndarray, head: HeadModel | str = DEFAULT_HEAD, size: int = 512) -> np.ndarray:
    """One [58] motion frame -> [size, size, 3] uint8 image."""
    head = load_head(head) if isinstance(head, str) else head
    verts = head.vertices(np.asarray(motion, np.float32).reshape(1, -1))[0]
    def work():
        with RENDER_LOCK:
            _drop_persistent()
            with HeadRenderer.for_head(head, size=size) as r:
                return r.render(verts)

    return on_gl_thread(work)


def _render_locked(clips, out, labels, head, audio, sample_rate, size, progress) -> Path:
    if audio is None and clips[0].audio is not None:
        audio, sample_rate = clips[0].audio, clips[0].sample_rate
    tracks = [_Track(c, head) for c in clips]
    num_frames = tracks[0].length
    grid = None
    if len(clips) > 1:         # checked before any renderer exists: a renderer left unclosed ends the EGL display
        labels = list(labels) if labels else [chr(ord("A") + i) for i in range(len(clips))]
        if len(labels) != len(clips):
            raise ValueError(f"{len(labels)} labels for {len(clips)} clips")
        grid = GridComposer(labels, size)
    renderers: dict[int, HeadRenderer] = {}

    def frames() -> Iterator[np.ndarray]:
        streams = [t.frames(num_frames) for t in tracks]
        for verts in tqdm(zip(*streams), total=num_frames, desc="render", unit="frame", disable=not progress):
            tiles = [renderers[id(t.head)].render(v) for t, v in zip(tracks, verts)]
            yield tiles[0] if grid is None else grid.compose(tiles)

    try:
        for t in tracks:  # one renderer per topology: closing an EGL renderer tears down the shared display
            if id(t.head) not in renderers:
                renderers[id(t.head)] = HeadRenderer.for_head(t.head, size=size)
        return write_mp4(out, frames(), fps=FPS, audio=audio, sample_rate=sample_rate, num_frames=num_frames)
    finally:
        for r in renderers.values():
            r.close()
