"""Gradio blocks of the A²-LLM demo (the model library never imports gradio; only this package does)."""
