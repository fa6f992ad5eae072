"""The llm stage: prompt file, reply parsing, a tiny local causal LM, and an OpenAI-style server on 127.0.0.1."""
from __future__ import annotations

import json

import pytest

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.stages import LlmStage
from a2llm.data.builder.stages.llm import (HFChat, LlmConfig, LlmOutputError, OpenAIChat, PromptTemplate,
                                           build_chat_model, parse_answer)

from tests.fake_openai import FakeChatServer

from .helpers import make_wav, seed, tiny_causal_lm

GOOD = {"cleaned_answer": "Well, I think it went  great.", "question": "How did the interview go?",
        "text_emotion": "happy", "usable": True, "reason": ""}


# --------------------------------------------------------------------------- parsing


def test_parse_plain_fenced_and_chatty_replies():
    assert parse_answer(json.dumps(GOOD)).question == "How did the interview go?"
    chatty = "Sure! Here is the JSON:\n```json\n" + json.dumps(GOOD) + "\n```\nHope this helps {not json}"
    ans = parse_answer(chatty)
    assert ans.cleaned_answer == "Well, I think it went great."  # whitespace runs collapsed
    assert (ans.text_emotion, ans.usable, ans.reason) == ("happy", True, "")


def test_parse_skips_reasoning_drafts_and_normalises_fields():
    draft = json.dumps({**GOOD, "question": "draft?"})
    final = json.dumps({**GOOD, "text_emotion": "Surprise", "usable": "false", "reason": "fragment"})
    ans = parse_answer(f"<think>maybe {draft}</think>{final}")
    assert ans.question == GOOD["question"] and ans.text_emotion == "surprised"
    assert ans.usable is False and ans.reason == "fragment"
    assert parse_answer(json.dumps({k: v for k, v in GOOD.items() if k not in ("usable", "reason")})).usable


@pytest.mark.parametrize("raw, message", [
    ("I cannot help with that.", "no JSON object with a 'question'"),
    ('{"cleaned_answer": "x", "question": "q"', "no JSON object"),  # truncated
    (json.dumps({**GOOD, "question": "  "}), "'question' must be a non-empty string"),
    (json.dumps({**GOOD, "cleaned_answer": None}), "'cleaned_answer'"),
    (json.dumps({**GOOD, "text_emotion": "angry"}), "text_emotion must be one of"),
    (json.dumps({**GOOD, "usable": "maybe"}), "usable must be true or false"),
])
def test_parse_rejects_invalid_replies(raw, message):
    with pytest.raises(LlmOutputError, match=message):
        parse_answer(raw)


# --------------------------------------------------------------------------- prompt


def test_packaged_prompt_renders_every_field():
    prompt = PromptTemplate.load()
    text = prompt.render("so uh yeah it costs $5", "sad")
    assert "so uh yeah it costs $5" in text and "sad" in text
    assert "neutral, happy, sad, surprised, contemptuous, curious" in text
    assert '"cleaned_answer"' in text and "$" not in text.replace("$5", "")


def test_prompt_files_are_checked(tmp_path):
    with pytest.raises(ValueError, match=r"no \$transcript placeholder"):
        PromptTemplate("Write a question.")
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['speaker'\]"):
        PromptTemplate("$transcript by $speaker")
    assert PromptTemplate("costs $$3: $transcript").render("hi", None) == "costs $3: hi"
    with pytest.raises(FileNotFoundError, match="prompt file not found"):
        PromptTemplate.load(tmp_path / "missing.txt")
    custom = tmp_path / "p.txt"
    custom.write_text("Q for: $transcript ($acoustic_emotion)")
    stage = LlmStage(LlmConfig(prompt=str(custom)), model=_Fixed("{}"))
    assert stage.prompt.render("x", None) == "Q for: x (unknown)"


# --------------------------------------------------------------------------- stage helpers


class _Fixed:
    name = "fixed"

    def __init__(self, reply):
        self.reply = reply
        self.prompts = []

    def complete(self, prompt):
        self.prompts.append(prompt)
        return self.reply


def _manifest(tmp_path, text="well i think it went great"):
    make_wav(tmp_path / "raw" / "a.wav", seconds=0.2)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    item = manifest.items[0].id
    seed(manifest, "asr", {item: {"text": text}})
    seed(manifest, "emotion", {item: {"emotion": "happy"}})
    return manifest, item


def test_stage_records_answer_or_failure_with_raw_reply(tmp_path):
    manifest, item = _manifest(tmp_path)
    model = _Fixed("```json\n" + json.dumps(GOOD) + "\n```")
    assert run_stage(manifest, LlmStage(model=model), progress=False).done == 1
    out = manifest.results("llm")[item].output
    assert out["question"] == GOOD["question"] and out["model"] == "fixed"
    assert out["prompt_sha1"] == PromptTemplate.load().sha1
    assert "well i think it went great" in model.prompts[0] and "happy" in model.prompts[0]

    bad = _Fixed("Here you go: question = what?")
    run_stage(manifest, LlmStage(model=bad), progress=False, retry_failed=True)  # item is done: not rerun
    assert bad.prompts == []
    manifest2, item2 = _manifest(tmp_path / "second")
    assert run_stage(manifest2, LlmStage(model=bad), progress=False).failed == 1
    failure = manifest2.results("llm")[item2]
    assert "not a valid answer" in failure.error and failure.output == {"raw": bad.reply}


def test_local_hf_model_end_to_end(tmp_path):
    folder = tiny_causal_lm(tmp_path / "lm")
    chat = HFChat.from_pretrained(str(folder), device="cpu", max_new_tokens=16)
    reply = chat.complete("hello")
    assert isinstance(reply, str) and reply == chat.complete("hello")  # greedy: deterministic
    assert "<|im_end|>" not in reply

    manifest, item = _manifest(tmp_path)
    stage = LlmStage(LlmConfig(backend="hf", model=str(folder), device="cpu", max_new_tokens=16))
    summary = run_stage(manifest, stage, progress=False)
    # A random 1-layer model writes no JSON: the item fails and keeps exactly what the model said.
    assert summary.failed == 1
    failure = manifest.results("llm")[item]
    prompt = stage.prompt.render("well i think it went great", "happy")
    assert failure.output["raw"] == stage.model.complete(prompt)


# --------------------------------------------------------------------------- OpenAI-compatible server


@pytest.fixture
def server():
    servers = []

    def start(content, statuses=()):
        servers.append(FakeChatServer(content, statuses))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_openai_backend_through_the_stage(tmp_path, server, monkeypatch):
    srv = server("Sure.\n" + json.dumps(GOOD))
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    manifest, item = _manifest(tmp_path)
    stage = LlmStage(LlmConfig(backend="openai", model="qwen2.5-7b-instruct", base_url=srv.url,
                               api_key_env="TEST_LLM_KEY", max_new_tokens=99))
    assert run_stage(manifest, stage, progress=False).done == 1
    assert manifest.results("llm")[item].output["question"] == GOOD["question"]
    (req,) = srv.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer secret"
    body = req["body"]
    assert body["model"] == "qwen2.5-7b-instruct" and body["temperature"] == 0 and body["max_tokens"] == 99
    assert body["messages"][0]["role"] == "user" and "well i think it went great" in body["messages"][0]["content"]


def test_openai_backend_base_url_from_env_and_retries(server, monkeypatch):
    srv = server(json.dumps(GOOD), statuses=[503, 429])
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chat = build_chat_model(LlmConfig(backend="openai", model="m"))
    assert isinstance(chat, OpenAIChat) and chat.url == srv.url + "/chat/completions"
    chat.backoff_s = 0.01
    assert parse_answer(chat.complete("hi")).question == GOOD["question"]
    assert len(srv.requests) == 3 and srv.requests[0]["auth"] is None  # no key set: no header


def test_openai_backend_errors(server, monkeypatch):
    srv = server("unused", statuses=[400])
    with pytest.raises(RuntimeError, match="HTTP 400"):
        OpenAIChat(srv.url, "m", retries=3, backoff_s=0.01).complete("hi")
    assert len(srv.requests) == 1  # a client error is not retried
    with pytest.raises(RuntimeError, match="could not reach"):
        OpenAIChat("http://127.0.0.1:9/v1", "m", retries=0, timeout_s=2).complete("hi")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="needs a base URL"):
        build_chat_model(LlmConfig(backend="openai"))
    with pytest.raises(ValueError, match="'hf' or 'openai'"):
        build_chat_model(LlmConfig(backend="claude"))
