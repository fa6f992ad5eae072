"""FLAME-QA: the dataset format, subtask collator, builder pipeline and the FLAME-QA-nano generator.

    from a2llm.data import load_flame_qa
    ds = load_flame_qa("data/flame-qa-nano", split="train")
    s = ds[0]; s.question_text, s.question_audio, s.response_text, s.response_audio, s.motion, s.emotion
"""
from a2llm.data.format import EMOTIONS, SPLITS, FlameQADataset, FlameQASample, FlameQAWriter, Turn, load_flame_qa

__all__ = ["EMOTIONS", "SPLITS", "FlameQADataset", "FlameQASample", "FlameQAWriter", "Turn", "load_flame_qa"]
