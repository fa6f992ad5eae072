"""One model over the subsets: answer every spoken question (cached), then score every answer (cached).

An *answerer* turns one spoken question into the reply's text: :class:`EngineAnswerer` runs an A²-LLM
checkpoint through the streaming engine, each question a fresh dialogue (``Engine.reset()`` before every turn),
and keeps the text of the reply (``TurnMetrics.text``). Anything with ``name`` and ``answer(item, audio)``
works (the tests use answerers whose replies are known).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from a2llm.eval.voicebench.cache import RunFolder
from a2llm.eval.voicebench.layout import SUBSETS, Item, load_audio, load_items
from a2llm.eval.voicebench.scoring import Scorer, subset_score


@dataclass
class Answer:
    """A reply's text, with whatever the answerer wants recorded next to it (``info``)."""

    text: str
    info: dict = field(default_factory=dict)


class Answerer(Protocol):
    """Spoken question in, the model's text answer out."""

    name: str

    def answer(self, item: Item, audio: np.ndarray) -> str | Answer:
        """The reply to ``item``, spoken as ``audio`` (float32 mono, 16 kHz), as a fresh dialogue."""
        ...


class EngineAnswerer:
    """An A²-LLM checkpoint answering through :class:`~a2llm.engine.Engine` (optimized decoding).

    No detokenizer is loaded: the text answer needs only the LLM, and the engine then emits audio tokens
    without synthesising speech (motion is still made, as the engine always does).

    Args:
        checkpoint: the checkpoint folder.
        max_new_tokens: decode steps per reply (text and audio tokens are interleaved, about one text token per
            five steps, so this bounds the answer's length; a reply cut there is marked ``truncated``).
        device: "cuda" / "cpu" / None (CUDA when available).
    """

    def __init__(self, checkpoint: str | Path, max_new_tokens: int = 800, device: str | None = None):
        from a2llm.engine import EngineConfig
        from a2llm.model import read_manifest

        self.checkpoint = Path(checkpoint)
        self.name = read_manifest(self.checkpoint).get("name") or self.checkpoint.name
        self.config = EngineConfig(optimized=True, max_new_tokens=max_new_tokens, device=device)
        self._engine = None

    @property
    def engine(self):
        """The engine, loaded on first use (a run whose answers are all cached loads no model)."""
        if self._engine is None:
            from a2llm.engine import Engine
            from a2llm.model import A2LLM, load_checkpoint_tokenizer

            self._engine = Engine(A2LLM.from_pretrained(self.checkpoint), load_checkpoint_tokenizer(self.checkpoint),
                                  None, self.config)
        return self._engine

    def settings(self) -> dict:
        """What determines this answerer's replies (recorded in the output folder's run.json)."""
        return {"checkpoint": str(self.checkpoint.resolve()), "max_new_tokens": self.config.max_new_tokens,
                "system_prompt": self.config.system_prompt, "decoding": "greedy"}

    def answer(self, item: Item, audio: np.ndarray) -> Answer:
        from a2llm.engine import TurnMetrics

        self.engine.reset()
        metrics = None
        for event in self.engine.turn(audio=audio, sample_rate=16000):
            if isinstance(event, TurnMetrics):
                metrics = event
        self.engine.reset()
        if metrics is None:  # the engine always ends a turn with its metrics
            raise RuntimeError("the engine's turn ended without TurnMetrics")
        return Answer(metrics.text, {"truncated": metrics.cancelled, "decode_tokens": metrics.decode_tokens,
                                     "wall_ms": round(metrics.wall_ms, 1)})


@dataclass
class SubsetResult:
    """One subset's outcome: ``score`` 0-100 (None: not scored), items answered / scored, unparsable verdicts."""

    name: str
    n: int
    score: float | None = None
    invalid: int = 0
    scoring: str = ""

    def as_dict(self) -> dict:
        return {"subset": self.name, "title": SUBSETS[self.name].title, "metric": SUBSETS[self.name].metric,
                "n": self.n, "score": self.score, "invalid": self.invalid, "scoring": self.scoring}


@dataclass
class ModelResult:
    """A table row: one model's subset results; ``average`` is the mean of the scored subsets."""

    model: str
    subsets: dict[str, SubsetResult]

    @property
    def average(self) -> float | None:
        scores = [r.score for r in self.subsets.values() if r.score is not None]
        return sum(scores) / len(scores) if scores else None

    def as_dict(self) -> dict:
        return {"model": self.model, "average": self.average,
                "subsets": {k: v.as_dict() for k, v in self.subsets.items()}}


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="q", leave=False)


def answer_subset(items: list[Item], answerer: Answerer, folder: RunFolder, progress: bool = True) -> dict[str, str]:
    """Every item's answer, from the cache or from ``answerer`` (appended to the cache as soon as it is made)."""
    if not items:
        return {}
    cache = folder.answers(items[0].subset)
    todo = [it for it in items if it.id not in cache]
    for item in _progress(todo, len(todo), f"answer {items[0].subset}", progress):
        t = time.perf_counter()
        reply = answerer.answer(item, load_audio(item.audio_path))
        reply = reply if isinstance(reply, Answer) else Answer(str(reply))
        cache.add({"id": item.id, "question": item.question, "answer": reply.text,
                   "seconds": round(time.perf_counter() - t, 3), **reply.info})
    return {it.id: cache.get(it.id)["answer"] for it in items}


def score_subset(items: list[Item], answers: dict[str, str], scorer: Scorer, folder: RunFolder,
                 progress: bool = True) -> SubsetResult:
    """Judge (or match) every answer, reusing cached verdicts given to the same answer by the same scoring."""
    subset = items[0].subset
    tag = scorer.tag(subset)
    cache = folder.judgements(subset, tag)
    todo = [it for it in items if (cache.get(it.id) or {}).get("answer") != answers[it.id]]
    for item in _progress(todo, len(todo), f"judge {subset}", progress):
        verdict = scorer.score(item, answers[item.id])
        cache.add({"id": item.id, "answer": answers[item.id], "score": verdict.score, "raw": verdict.raw})
    score, invalid = subset_score([cache.get(it.id)["score"] for it in items])
    return SubsetResult(subset, len(items), score, invalid, tag)


def run_model(data: str | Path, answerer: Answerer, out: str | Path, scorer: Scorer | None,
              subsets=tuple(SUBSETS), limit: int | None = None, progress: bool = True,
              settings: dict | None = None) -> ModelResult:
    """Answer and score ``subsets`` of the benchmark at ``data`` with one model; caches under ``out``.

    ``scorer`` None: answers only (nothing scored). ``settings``: what determines the answers (checked against
    the folder's run.json so answers of different runs never mix; default: the answerer's ``settings()`` if it
    has one, else its name)."""
    if scorer is not None:
        scorer.check(subsets)
    items = {s: load_items(data, s, limit) for s in subsets}          # the whole layout is checked up front
    folder = RunFolder(out)
    if settings is None:
        settings = answerer.settings() if hasattr(answerer, "settings") else {"answerer": answerer.name}
    folder.claim(settings)
    results: dict[str, SubsetResult] = {}
    for subset in subsets:
        answers = answer_subset(items[subset], answerer, folder, progress)
        if scorer is None or not items[subset]:
            results[subset] = SubsetResult(subset, len(items[subset]))
        else:
            results[subset] = score_subset(items[subset], answers, scorer, folder, progress)
    result = ModelResult(answerer.name, results)
    folder.save_scores(result.as_dict())
    return result
