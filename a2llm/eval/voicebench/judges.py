"""Judge models: the interface the scorer calls, and two backends.

A judge is anything with a ``name`` (recorded with every judgement, and part of the cache's key) and
``complete(prompt) -> str`` (one user message in, the judge's reply text out, greedy). Backends:

* :class:`OpenAIJudge` — any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI itself, or a local vLLM /
  llama.cpp / Ollama server), over ``urllib``; temperature 0, no system prompt (the release's setting);
* :class:`HFJudge` — a local Hugging Face chat model through a transformers ``text-generation`` pipeline.

:func:`make_judge` builds one from the command line's flags / environment and says what to set when something
is missing.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Protocol, runtime_checkable

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


class OpenAIJudge:
    """A chat model behind an OpenAI-compatible HTTP API.

    Args:
        model: the model name the endpoint serves.
        base_url: the API root (``.../v1``); ``/chat/completions`` is appended.
        api_key: bearer token (None: no Authorization header, for local servers).
        timeout: seconds per request.
        retries: attempts on network errors, HTTP 429 and 5xx, with exponential back-off.
    """

    def __init__(self, model: str = DEFAULT_OPENAI_MODEL, base_url: str = DEFAULT_OPENAI_URL,
                 api_key: str | None = None, timeout: float = 120.0, retries: int = 4, temperature: float = 0.0):
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.api_key, self.timeout, self.retries, self.temperature = api_key, timeout, retries, temperature
        self.name = f"openai:{model}"

    def _request(self, prompt: str) -> dict:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def complete(self, prompt: str) -> str:
        last = None
        for attempt in range(self.retries):
            try:
                reply = self._request(prompt)
                content = reply["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise JudgeError(f"{self.url} returned no text content: {str(reply)[:300]}")
                return content
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:300]
                if exc.code in (400, 401, 403, 404):
                    raise JudgeError(f"judge endpoint {self.url} refused the request (HTTP {exc.code}): {detail}") from exc
                last = f"HTTP {exc.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(exc)
            except (KeyError, IndexError, json.JSONDecodeError) as exc:
                raise JudgeError(f"judge endpoint {self.url} answered in an unexpected shape: {exc}") from exc
            time.sleep(min(2 ** attempt, 30))
        raise JudgeError(f"judge endpoint {self.url} failed {self.retries} times; last error: {last}")


class HFJudge:
    """A local Hugging Face chat model (transformers ``text-generation`` pipeline, greedy decoding).

    Args:
        model: a model id or folder (a chat / instruct model: its chat template formats the prompt).
        device: "cuda", "cpu", ... (None: transformers' choice).
        max_new_tokens: reply length cap (the rubrics ask for a short explanation and a verdict).
    """

    def __init__(self, model: str, device: str | None = None, max_new_tokens: int = 512):
        try:
            from transformers import pipeline
        except ImportError as exc:  # pragma: no cover - transformers is a project dependency
            raise JudgeNotConfigured("--judge hf needs the transformers package") from exc
        self.pipe = pipeline("text-generation", model=model, device=device)
        self.max_new_tokens = max_new_tokens
        self.name = f"hf:{model}"

    def complete(self, prompt: str) -> str:
        out = self.pipe([{"role": "user", "content": prompt}], max_new_tokens=self.max_new_tokens,
                        do_sample=False, return_full_text=False)
        text = out[0]["generated_text"]
        if isinstance(text, list):               # chat output: the conversation, the reply last
            text = text[-1]["content"]
        return str(text)


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
