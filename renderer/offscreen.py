"""Offscreen rendering of head meshes with pyrender (EGL, OSMesa fallback).

The renderer keeps one pyrender scene and one GL context alive and, per frame, only streams new
vertex positions and normals into the mesh's vertex buffer; the camera frames the neutral head once.
Fragment shading dominates on a software rasteriser, so the scene uses a short custom shader
(``renderer/shaders``) instead of pyrender's PBR one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from scipy import sparse

from renderer.platform import select_platform

select_platform()

import pyrender  # noqa: E402  (after the platform is chosen)
from OpenGL import GL  # noqa: E402
from pyrender.shader_program import ShaderProgramCache  # noqa: E402

SHADER_DIR = Path(__file__).resolve().parent / "shaders"
DEFAULT_SKIN = (0.85, 0.68, 0.58)
BACKGROUND = (0.96, 0.96, 0.97)


def vertex_normal_operator(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """Sparse [V, F] incidence matrix: vertex normals = normalize(op @ face_normals)."""
    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(num_vertices, len(faces)))


def vertex_normals(verts: np.ndarray, faces: np.ndarray, op: sparse.csr_matrix | None = None) -> np.ndarray:
    """Area-weighted vertex normals, [V, 3] -> [V, 3] float32."""
    op = op if op is not None else vertex_normal_operator(faces, len(verts))
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    n = op @ np.cross(v1 - v0, v2 - v0)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def frame_camera(neutral: np.ndarray, yfov: float, margin: float = 1.08, box: np.ndarray | None = None) -> np.ndarray:
    """Camera-to-world pose [4, 4] looking down -z at the head, framing the crown down to below the chin.

    FLAME-like meshes carry a neck of varying length, so the frame is sized from the head's width
    (ears included) rather than from the full height: 1.5 widths tall, top-aligned at the crown.
    A head that says what to show (``box``: [2, 3] min and max corners, e.g. the human head's bust from the
    crown to below the shoulders' line) is framed to that box's height instead.
    """
    if box is not None:
        box = np.asarray(box, np.float64)
        half = 0.5 * (box[1, 1] - box[0, 1])
        center = np.array([0.5 * (box[0, 0] + box[1, 0]), 0.5 * (box[0, 1] + box[1, 1]), 0.0])
        pose = np.eye(4)
        pose[:3, 3] = center + [0.0, 0.0, half / np.tan(yfov / 2) + box[1, 2]]
        return pose
    top = neutral[:, 1].max()
    width = neutral[:, 0].max() - neutral[:, 0].min()
    half = 0.5 * 1.5 * width * margin
    center = np.array([0.5 * (neutral[:, 0].max() + neutral[:, 0].min()), top + 0.02 * width - half, 0.0])
    dist = half / np.tan(yfov / 2) + neutral[:, 2].max()
    pose = np.eye(4)
    pose[:3, 3] = center + [0.0, 0.0, dist]
    return pose


class HeadRenderer:
    """Render vertex sequences of one topology to RGB frames.

    Args:
        faces: [F, 3] triangles.
        neutral: [V, 3] neutral vertices, used to frame the camera.
        vertex_colors: [V, 3] albedo in [0, 1], or None for a uniform skin tone.
        size: output width and height in pixels (square), 512 by default.
        yfov: vertical field of view in radians (a long lens flattens less than a wide one).
        frame: [2, 3] box the camera shows (see :func:`frame_camera`), or None to frame from the head's width.
    """

    def __init__(self, faces: np.ndarray, neutral: np.ndarray, vertex_colors: np.ndarray | None = None,
                 size: int = 512, yfov: float = np.deg2rad(18.0), frame: np.ndarray | None = None):
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        self.num_vertices = len(neutral)
        self.size = int(size)
        colors = np.tile(DEFAULT_SKIN, (self.num_vertices, 1)) if vertex_colors is None else vertex_colors
        self._colors = np.hstack([np.asarray(colors, np.float32), np.ones((self.num_vertices, 1), np.float32)])
        self._normal_op = vertex_normal_operator(self.faces, self.num_vertices)
        neutral = np.asarray(neutral, np.float32)
        self._primitive = pyrender.Primitive(positions=neutral, normals=vertex_normals(neutral, self.faces, self._normal_op),
                                             color_0=self._colors, indices=self.faces.astype(np.uint32))
        self.scene = pyrender.Scene(bg_color=(*BACKGROUND, 1.0), ambient_light=(0.0, 0.0, 0.0))
        self.scene.add(pyrender.Mesh([self._primitive]))
        self.camera_pose = frame_camera(neutral, yfov, box=frame)
        self.scene.add(pyrender.PerspectiveCamera(yfov=yfov, znear=0.05, zfar=5.0), pose=self.camera_pose)
        self._gl = pyrender.OffscreenRenderer(self.size, self.size)
        HeadRenderer._live += 1
        self._gl._renderer._program_cache = ShaderProgramCache(shader_dir=str(SHADER_DIR))
        # pyrender reads back and linearises depth on every frame; we only need colour (~30 % of a frame).
        self._gl._renderer._read_main_framebuffer = self._read_color
        self._gl.render(self.scene)             # uploads the mesh; later frames only refresh its buffer

    @classmethod
    def for_head(cls, head, size: int = 512, **kw) -> "HeadRenderer":
        """Renderer for a :class:`a2llm.head.HeadModel` (uses its faces, neutral, colours and frame)."""
        kw.setdefault("frame", getattr(head, "frame", None))
        return cls(head.faces, head.neutral(), head.vertex_colors, size=size, **kw)

    def _upload(self, verts: np.ndarray) -> None:
        normals = vertex_normals(verts, self.faces, self._normal_op)
        data = np.ascontiguousarray(np.hstack([verts.astype(np.float32), normals, self._colors]))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._primitive._buffers[0])
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def _read_color(self, scene, flags):
        """Resolve the multisampled framebuffer and read RGB only (replaces pyrender's colour+depth read)."""
        r = self._gl._renderer
        w, h = r._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, r._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, r._main_fb)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, r._main_fb)
        buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        return np.frombuffer(buf, np.uint8).reshape(h, w, 3)[::-1], None

    def render(self, verts: np.ndarray) -> np.ndarray:
        """[V, 3] vertices -> [size, size, 3] uint8 RGB frame."""
        verts = np.asarray(verts, np.float32)
        if verts.shape != (self.num_vertices, 3):
            raise ValueError(f"expected vertices of shape ({self.num_vertices}, 3), got {verts.shape}")
        if not np.isfinite(verts).all():
            raise ValueError("vertices contain NaN or inf")
        self._gl._platform.make_current()
        self._upload(verts)
        color, _ = self._gl.render(self.scene)
        return np.ascontiguousarray(color)

    def render_sequence(self, vertex_seq: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Lazily render each [V, 3] of a sequence (an array [T, V, 3] or any iterable of frames)."""
        for verts in vertex_seq:
            yield self.render(verts)

    #: Renderers whose GL context is alive. pyrender's EGL platform terminates the display when it deletes a
    #: context, and every EGL renderer of the process shares that display: closing one renderer (a grid video
    #: in the app, a CLI call in a test) would kill the contexts of all the others.
    _live: int = 0

    def close(self) -> None:
        if self._gl is None:
            return
        platform = self._gl._platform
        HeadRenderer._live -= 1
        if HeadRenderer._live > 0 and hasattr(platform, "_egl_display"):
            from OpenGL.EGL import eglDestroyContext

            platform.make_current()
            self._gl._renderer.delete()
            eglDestroyContext(platform._egl_display, platform._egl_context)   # the display stays up
            platform._egl_context = platform._egl_display = None
        else:
            self._gl.delete()
        self._gl = None

    def __enter__(self) -> "HeadRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
