"""Training entry points: ``python -m a2llm.train {tokenizer, ...}``."""
