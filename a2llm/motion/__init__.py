"""Motion: the [T, 58] layout, its files, importers of peers' outputs, and the RVQ motion tokenizer."""
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


def __getattr__(name: str):
    # The tokenizer pulls in vector-quantize-pytorch; load it only when asked for.
    if name == "MotionTokenizer":
        from a2llm.motion.tokenizer import MotionTokenizer
        return MotionTokenizer
    raise AttributeError(name)
