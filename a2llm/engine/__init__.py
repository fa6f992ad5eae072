"""The streaming engine: one generator per turn yielding text, speech and motion on one timeline."""
from a2llm.engine.engine import STAGES, Engine, EngineConfig
from a2llm.engine.events import AudioChunk, Event, MotionChunk, TextDelta, TurnMetrics

__all__ = ["STAGES", "AudioChunk", "Engine", "EngineConfig", "Event", "MotionChunk", "TextDelta", "TurnMetrics"]
