"""Judge models: the interface the scorer calls, and two backends.

A judge is anything with a ``name`` (recorded with every judgement, and part of the cache's key) and
``complete(prompt) -> str`` (one user message in, the judge's reply text out, greedy). Backends:

* :class:`OpenAIJudge` — any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI itself, or a local vLLM /
  llama.cpp / Ollama server), over ``urllib``; temperature 0, no system prompt (the release's setting);
* :class:`HFJudge` — a local Hugging Face chat model (transformers, greedy).

:func:`make_judge` builds one from the command line's flags / environment and says what to set when something
is missing.
"""
from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from a2llm.data.builder.stages.llm import HFChat, OpenAIChat

#: The judge model the OpenAudioBench release used (GPT-4o, 2024-08-06 snapshot).
DEFAULT_OPENAI_MODEL = "gpt-4o-2024-08-06"
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
JUDGE_KINDS = ("openai", "hf", "none")


class JudgeNotConfigured(ValueError):
    """A subset needs a judge and none (or an incomplete one) was configured; the message says what to set."""


class JudgeError(RuntimeError):
    """The judge could not be reached or answered with something unusable, after retries."""


@runtime_checkable
class Judge(Protocol):
    """What the scorer needs from a judge model."""

    name: str

    def complete(self, prompt: str) -> str:
        """The judge's reply to one user message."""
        ...


class OpenAIJudge(OpenAIChat):
    """A chat model behind an OpenAI-compatible HTTP API: the data builder's :class:`OpenAIChat` client with the
    release's settings (temperature 0, no ``max_tokens``, no system prompt); failures raise :class:`JudgeError`.

    Args:
        model: the model name the endpoint serves.
        base_url: the API root (``.../v1``); ``/chat/completions`` is appended.
        api_key: bearer token (None: no Authorization header, for local servers).
        timeout: seconds per request.
        retries: attempts on network errors, HTTP 429 and 5xx, with exponential back-off.
    """

    def __init__(self, model: str = DEFAULT_OPENAI_MODEL, base_url: str = DEFAULT_OPENAI_URL,
                 api_key: str | None = None, timeout: float = 120.0, retries: int = 4):
        super().__init__(base_url, model, api_key=api_key, max_tokens=None, timeout_s=timeout,
                         retries=max(0, retries - 1), backoff_s=1.0)
        self.name = f"openai:{model}"

    def complete(self, prompt: str) -> str:
        try:
            content = super().complete(prompt)
        except RuntimeError as exc:
            raise JudgeError(f"judge endpoint: {exc}") from exc
        if not isinstance(content, str):
            raise JudgeError(f"{self.url} returned no text content: {str(content)[:300]}")
        return content


class HFJudge(HFChat):
    """A local Hugging Face chat model (the data builder's :class:`HFChat`: greedy, through its chat template).

    Args:
        model: a model id or folder (a chat / instruct model).
        device: "cuda", "cpu", ... (None: a GPU when there is one).
        max_new_tokens: reply length cap (the rubrics ask for a short explanation and a verdict).
    """

    def __init__(self, model: str, device: str | None = None, max_new_tokens: int = 512):
        chat = HFChat.from_pretrained(model, device=device or "auto", max_new_tokens=max_new_tokens)
        super().__init__(chat.model, chat.tokenizer, max_new_tokens=max_new_tokens, name=f"hf:{model}")


def make_judge(kind: str, model: str | None = None, url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
               device: str | None = None) -> Judge | None:
    """The judge the flags describe (None for ``kind == "none"``).

    ``openai``: ``model`` defaults to the release's GPT-4o snapshot, ``url`` to ``$OPENAI_BASE_URL`` or OpenAI's
    API; the key is read from the environment variable ``api_key_env`` and is required for OpenAI's own API.
    ``hf``: ``model`` is required."""
    if kind not in JUDGE_KINDS:
        raise JudgeNotConfigured(f"unknown judge {kind!r}: one of {', '.join(JUDGE_KINDS)}")
    if kind == "none":
        return None
    if kind == "hf":
        if not model:
            raise JudgeNotConfigured("--judge hf needs --judge-model (a Hugging Face chat model id or folder)")
        return HFJudge(model, device=device)
    url = url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_URL
    key = os.environ.get(api_key_env) or None
    if key is None and url.rstrip("/") == DEFAULT_OPENAI_URL:
        raise JudgeNotConfigured(f"--judge openai on {DEFAULT_OPENAI_URL} needs an API key: set ${api_key_env} "
                                 "(or name another variable with --judge-api-key-env), or point --judge-url at an "
                                 "OpenAI-compatible server")
    return OpenAIJudge(model or DEFAULT_OPENAI_MODEL, url, key)
