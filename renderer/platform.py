"""Choose the OpenGL platform for offscreen rendering before anything imports OpenGL.

PyOpenGL binds its platform at first import, so the choice has to be made first: honour
``PYOPENGL_PLATFORM`` when set, otherwise try EGL (Mesa llvmpipe works headless) and fall back
to OSMesa. The probe runs in a subprocess because a failed EGL import cannot be undone in-process.
"""
from __future__ import annotations

import os
import subprocess
import sys

_PROBE = "import pyrender; r = pyrender.OffscreenRenderer(8, 8); r.delete()"
_INSTALL_HINT = ("no offscreen OpenGL platform works: install Mesa's EGL or OSMesa "
                 "(Debian: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6) "
                 "and PyOpenGL>=3.1.5 for OSMesa; or set PYOPENGL_PLATFORM yourself")


def _works(platform: str) -> bool:
    env = dict(os.environ, PYOPENGL_PLATFORM=platform)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def select_platform() -> str:
    """Set and return ``PYOPENGL_PLATFORM`` ("egl" or "osmesa"). Raises RuntimeError if neither works."""
    chosen = os.environ.get("PYOPENGL_PLATFORM")
    if chosen:
        return chosen
    if "OpenGL" in sys.modules:
        raise RuntimeError("OpenGL was imported before renderer.platform.select_platform(); "
                           "import renderer first or set PYOPENGL_PLATFORM")
    for platform in ("egl", "osmesa"):
        if _works(platform):
            os.environ["PYOPENGL_PLATFORM"] = platform
            return platform
    raise RuntimeError(_INSTALL_HINT)
