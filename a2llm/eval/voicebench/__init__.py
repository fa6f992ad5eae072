"""The seed's table 2 harness: language capability on OpenAudioBench (the audio QA benchmark released with
Baichuan-Audio), five subsets — AlpacaEval, Llama Questions, Reasoning QA, TriviaQA, Web Questions.

Spoken questions go through the streaming engine (audio in, the reply's text out), each a fresh dialogue; the
answers are scored the way the benchmark's release scores them (a judge model per subset's rubric), optionally
with a reference-matching rule for the three short-answer subsets. Answers and judgements are cached per item
so an interrupted run resumes where it stopped. See docs/EVAL.md.

Modules, one job each:

* :mod:`~a2llm.eval.voicebench.layout` — the subsets, the released folder layout, reading items and audio;
* :mod:`~a2llm.eval.voicebench.judges` — the judge interface and its OpenAI-compatible / Hugging Face backends;
* :mod:`~a2llm.eval.voicebench.scoring` — judge prompts, parsing their verdicts, the matching rule, averages;
* :mod:`~a2llm.eval.voicebench.cache` — append-only JSONL caches of answers and judgements;
* :mod:`~a2llm.eval.voicebench.runner` — the answerer interface, the engine answerer, one run over the subsets;
* :mod:`~a2llm.eval.voicebench.table` — table 2 as text and as JSON;
* :mod:`~a2llm.eval.voicebench.cli` — ``python -m a2llm.eval voicebench``.
"""
from a2llm.eval.voicebench.layout import SUBSETS, Item, LayoutError, load_items
from a2llm.eval.voicebench.judges import Judge, JudgeError, JudgeNotConfigured
from a2llm.eval.voicebench.scoring import Scorer
from a2llm.eval.voicebench.runner import Answer, Answerer, EngineAnswerer, ModelResult, run_model

__all__ = ["SUBSETS", "Item", "LayoutError", "load_items", "Judge", "JudgeError", "JudgeNotConfigured", "Scorer",
           "Answer", "Answerer", "EngineAnswerer", "ModelResult", "run_model"]
