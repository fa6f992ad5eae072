"""Stage ``llm``: clean each transcript and generate the user question it answers (seed §4, FLAME-QA).

An LLM reads the ASR transcript (and the acoustic emotion) through the prompt in
``prompts/clean_and_question.txt`` and answers with one JSON object: the cleaned answer text, the question,
the emotion the words express, and whether the reply is usable at all. Two backends:

* ``"hf"``: a local Hugging Face causal LM (``AutoModelForCausalLM`` + tokenizer, chat template, greedy);
* ``"openai"``: any OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp server, OpenAI) over
  HTTP with urllib; base URL from the config or ``OPENAI_BASE_URL``, API key from the environment variable
  the config names (``OPENAI_API_KEY`` by default).

Replies are parsed leniently (code fences, leading prose and ``<think>`` blocks are skipped) but checked
strictly; a reply that holds no valid object fails the item, and the raw reply is kept with the failure.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import string
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from a2llm.data.builder.manifest import Record
from a2llm.data.builder.runner import ItemError, Stage
from a2llm.data.builder.stages._common import load_pretrained, resolve_device, resolve_dtype
from a2llm.data.builder.stages.emotion import EMOTIONS

DEFAULT_PROMPT = Path(__file__).resolve().parent.parent / "prompts" / "clean_and_question.txt"

# ----------------------------------------------------------------------------------------------- prompt


class PromptTemplate:
    """A prompt file with ``string.Template`` placeholders (``$$`` for a literal dollar sign).

    Placeholders: ``$transcript`` (required), ``$acoustic_emotion``, ``$emotions``.

    Args:
        text: the template text.
        source: where it came from, for error messages.
    """

    FIELDS = ("transcript", "acoustic_emotion", "emotions")

    def __init__(self, text: str, source: str = "<prompt>"):
        self.template = string.Template(text)
        self.source = source
        names = {m.group("named") or m.group("braced") for m in self.template.pattern.finditer(text)} - {None}
        if "transcript" not in names:
            raise ValueError(f"prompt {source} has no $transcript placeholder; the LLM would never see the text")
        unknown = names - set(self.FIELDS)
        if unknown:
            raise ValueError(f"prompt {source} has unknown placeholder(s) {sorted(unknown)}; "
                             f"available: {list(self.FIELDS)} (write $$ for a literal $)")
        self.sha1 = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]

    @classmethod
    def load(cls, path: str | Path | None = None) -> PromptTemplate:
        """Read a prompt file (default: the packaged ``clean_and_question.txt``)."""
        path = Path(path) if path is not None else DEFAULT_PROMPT
        try:
            return cls(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"prompt file not found: {path}") from None

    def render(self, transcript: str, acoustic_emotion: str | None) -> str:
        return self.template.substitute(transcript=transcript.strip(),
                                        acoustic_emotion=acoustic_emotion or "unknown",
                                        emotions=", ".join(EMOTIONS))


# ----------------------------------------------------------------------------------------------- parsing


class LlmOutputError(ValueError):
    """The LLM's reply holds no valid answer object."""


@dataclass(frozen=True)
class LlmAnswer:
    """A parsed reply.

    Attributes:
        cleaned_answer: the tidied transcript.
        question: the generated user question.
        text_emotion: one of the FLAME-QA emotions, as the words express it.
        usable: whether the LLM judged the transcript a coherent single-speaker reply.
        reason: why not, when not usable.
    """

    cleaned_answer: str
    question: str
    text_emotion: str
    usable: bool
    reason: str


_EMOTION_SYNONYMS = {"surprise": "surprised", "contempt": "contemptuous", "disgust": "contemptuous",
                     "disgusted": "contemptuous", "happiness": "happy", "joy": "happy", "sadness": "sad",
                     "curiosity": "curious", "calm": "neutral"}
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object that starts at a ``{`` of ``text`` and decodes, outermost first."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _text_field(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LlmOutputError(f"field {key!r} must be a non-empty string, got {value!r}")
    return " ".join(value.split())


def _emotion_field(value: Any) -> str:
    name = str(value).strip().lower() if value is not None else ""
    name = _EMOTION_SYNONYMS.get(name, name)
    if name not in EMOTIONS:
        raise LlmOutputError(f"text_emotion must be one of {list(EMOTIONS)}, got {value!r}")
    return name


def _bool_field(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise LlmOutputError(f"usable must be true or false, got {value!r}")


def parse_answer(raw: str) -> LlmAnswer:
    """Parse an LLM reply into an :class:`LlmAnswer`.

    The first JSON object with a ``question`` key is used, wherever it sits in the reply (after prose, inside a
    code fence); ``<think>...</think>`` blocks are ignored. ``usable`` defaults to true and ``reason`` to "" when missing.

    Raises:
        LlmOutputError: no such object, or a field is missing or of the wrong kind.
    """
    text = _THINK.sub("", raw)  # a reasoning model may draft an object before its final one
    candidates = [o for o in _json_objects(text) if "question" in o]
    if not candidates:
        raise LlmOutputError("the reply holds no JSON object with a 'question' field")
    obj = candidates[0]
    return LlmAnswer(
        cleaned_answer=_text_field(obj, "cleaned_answer"),
        question=_text_field(obj, "question"),
        text_emotion=_emotion_field(obj.get("text_emotion")),
        usable=_bool_field(obj.get("usable", True)),
        reason=str(obj.get("reason") or ""),
    )


# ----------------------------------------------------------------------------------------------- backends


class ChatModel(Protocol):
    """What the ``llm`` stage needs of a language model: one user message in, the reply text out."""

    name: str

    def complete(self, prompt: str) -> str:
        ...


class HFChat:
    """A local transformers causal LM, greedy decoding, through its chat template when it has one.

    Args:
        model: an ``AutoModelForCausalLM`` model (on its device, eval mode).
        tokenizer: its tokenizer.
        max_new_tokens: cap on the reply length.
        name: what to record as the model in outputs.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 512, name: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "auto", dtype: str = "auto",
                        max_new_tokens: int = 512) -> HFChat:
        """Load a causal LM and its tokenizer (Hugging Face id or local folder)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = resolve_device(device)
        model = load_pretrained("LLM", name_or_path, lambda: AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype, device)))
        tokenizer = load_pretrained("LLM", name_or_path, lambda: AutoTokenizer.from_pretrained(name_or_path))
        return cls(model.to(device).eval(), tokenizer, max_new_tokens=max_new_tokens, name=name_or_path)

    def complete(self, prompt: str) -> str:
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            inputs = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                        add_generation_prompt=True, return_tensors="pt",
                                                        return_dict=True)
        else:  # a base model: the prompt as plain text
            inputs = self.tokenizer(prompt, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                      pad_token_id=pad)
        new = out[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True)


class OpenAIChat:
    """An OpenAI-compatible ``/chat/completions`` endpoint, called with urllib (no client library).

    Args:
        base_url: API root, e.g. ``http://localhost:8000/v1`` (vLLM) or ``https://api.openai.com/v1``.
        model: model name the server knows.
        api_key: bearer token, or None for servers without authentication.
        max_tokens: cap on the reply length (None: not sent, the server's default).
        timeout_s: per-request timeout.
        retries: extra attempts after a connection error, 429 or 5xx (exponential backoff).
        backoff_s: first backoff delay; doubled each retry.
        json_mode: ask for ``response_format = {"type": "json_object"}`` (servers that support it).
    """

    RETRY_STATUS = (429, 500, 502, 503, 504)

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_tokens: int | None = 512,
                 timeout_s: float = 120.0, retries: int = 3, backoff_s: float = 2.0, json_mode: bool = False):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = model
        self.api_key = api_key
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.json_mode = json_mode

    def _request(self, prompt: str) -> urllib.request.Request:
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                                "temperature": 0}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), headers=headers,
                                      method="POST")

    def complete(self, prompt: str) -> str:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(self._request(prompt), timeout=self.timeout_s) as resp:
                    payload = resp.read()
                break
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                last = RuntimeError(f"{self.url} answered HTTP {exc.code}: {detail}")
                if exc.code not in self.RETRY_STATUS:
                    raise last from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = RuntimeError(f"could not reach {self.url}: {getattr(exc, 'reason', exc)}")
        else:
            raise last  # type: ignore[misc]
        try:
            return json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RuntimeError(f"{self.url} did not answer like chat-completions: {payload[:300]!r}") from exc


# ----------------------------------------------------------------------------------------------- stage


@dataclass(frozen=True)
class LlmConfig:
    """Options of the ``llm`` stage.

    Attributes:
        backend: ``"hf"`` (local transformers model) or ``"openai"`` (HTTP endpoint).
        model: Hugging Face id / local folder (hf) or the served model name (openai).
        prompt: prompt file; None = the packaged ``prompts/clean_and_question.txt``.
        max_new_tokens: cap on the reply length.
        device: hf only: ``"auto"``, ``"cuda"``, ``"cpu"``, ...
        dtype: hf only: ``"auto"`` (float16 on CUDA), ``"bfloat16"``, ...
        base_url: openai only: API root; None = the ``OPENAI_BASE_URL`` environment variable.
        api_key_env: openai only: environment variable holding the API key (unset = no authentication).
        timeout_s: openai only: per-request timeout.
        retries: openai only: retries on connection errors, 429 and 5xx.
        json_mode: openai only: request ``response_format = json_object``.
    """

    backend: str = "hf"
    model: str = "Qwen/Qwen2.5-7B-Instruct"
    prompt: str | None = None
    max_new_tokens: int = 512
    device: str = "auto"
    dtype: str = "auto"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    retries: int = 3
    json_mode: bool = False


def build_chat_model(config: LlmConfig) -> ChatModel:
    """The backend a config asks for."""
    if config.backend == "hf":
        return HFChat.from_pretrained(config.model, device=config.device, dtype=config.dtype,
                                      max_new_tokens=config.max_new_tokens)
    if config.backend == "openai":
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ValueError("llm backend 'openai' needs a base URL: set llm.base_url in the config or the "
                             "OPENAI_BASE_URL environment variable (e.g. http://localhost:8000/v1 for vLLM)")
        return OpenAIChat(base_url, config.model, api_key=os.environ.get(config.api_key_env),
                          max_tokens=config.max_new_tokens, timeout_s=config.timeout_s, retries=config.retries,
                          json_mode=config.json_mode)
    raise ValueError(f"llm.backend must be 'hf' or 'openai', got {config.backend!r}")


class LlmStage(Stage):
    """Clean the transcript and write the question.

    Output: ``cleaned_answer``, ``question``, ``text_emotion``, ``usable``, ``reason``, ``model``,
    ``prompt_sha1`` (which prompt produced it). A reply that does not parse fails the item with the raw reply
    in the failure's output (``raw``).

    Args:
        config: options (used to build the backend when ``model`` is not given).
        model: an already-constructed :class:`ChatModel`, used as is.
    """

    name = "llm"
    requires = ("asr", "emotion")

    def __init__(self, config: LlmConfig | None = None, *, model: ChatModel | None = None):
        self.config = config or LlmConfig()
        self.model = model
        self.prompt = PromptTemplate.load(self.config.prompt)  # fail at construction on a bad prompt file

    def load(self) -> None:
        if self.model is None:
            self.model = build_chat_model(self.config)

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        assert self.model is not None, "load() was not called"
        prompt = self.prompt.render(record.output("asr")["text"], record.output("emotion").get("emotion"))
        raw = self.model.complete(prompt)
        try:
            answer = parse_answer(raw)
        except LlmOutputError as exc:
            raise ItemError(f"LLM reply is not a valid answer: {exc}", {"raw": raw}) from exc
        return {"cleaned_answer": answer.cleaned_answer, "question": answer.question,
                "text_emotion": answer.text_emotion, "usable": answer.usable, "reason": answer.reason,
                "model": self.model.name, "prompt_sha1": self.prompt.sha1}
