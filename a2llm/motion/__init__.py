"""Motion: the [T, 58] layout, its files, importers of peers' outputs."""
from a2llm.motion.importers import IMPORTERS, import_motion
from a2llm.motion.io import (
    MotionClip,
    MotionFormatError,
    VertexClip,
    load_motion,
    resample_motion,
    save_motion,
    validate_motion,
)
