"""A²-LLM: an end-to-end conversational audio avatar (text, speech and FLAME facial motion from one model)."""

__version__ = "0.1.0"
