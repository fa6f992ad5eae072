"""The motion array layout shared by every part of the project (DESIGN.md, "Motion").

A motion is a float32 array ``[T, 58]`` at 25 fps::

    [0:50]   expression coefficients (psi)
    [50:53]  jaw pose, axis-angle (radians)
    [53:56]  global head rotation, axis-angle (radians)
    [56:58]  eyelids (left, right): 0 open ... 1 closed
"""

FPS = 25
MOTION_DIM = 58
NUM_EXPR = 50

EXPR = slice(0, 50)
JAW = slice(50, 53)
GLOBAL = slice(53, 56)
EYELIDS = slice(56, 58)
