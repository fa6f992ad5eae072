"""Stage ``filter``: quality gates that decide which items become FLAME-QA samples.

The filter loads no model: it judges what earlier stages measured. An item is *done* at this stage whether it
passes or not; ``passed`` and ``reasons`` in its output say which. Checks (each off when its bound is None):

* length — answer duration within [``min_duration_s``, ``max_duration_s``];
* speaking rate — transcript words per second within [``min_words_per_s``, ``max_words_per_s``] (too high
  flags Whisper hallucinating text over noise, too low flags long silences or music);
* level — ``rms_dbfs`` >= ``min_rms_dbfs`` (near-silent recordings);
* intelligibility — ASR confidence ``avg_logprob`` >= ``min_avg_logprob``, and the word error rate between the
  raw transcript and the LLM-cleaned text <= ``max_clean_wer`` (the cleaner must keep the words; when it had
  to change many, the recognition was poor or the LLM rewrote the reply);
* the LLM's own ``usable`` verdict (``require_usable``);
* question length in words within [``min_question_words``, ``max_question_words``];
* an acoustic emotion present (``require_acoustic_emotion``): drops utterances whose SER label has no
  FLAME-QA counterpart (angry, fearful speech), when the emotion stage recorded none;
* motion (``require_motion``): the smirk stage is required, and its length must match the audio within
  ``max_av_mismatch_s``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2llm.data.builder.manifest import Record
from a2llm.data.builder.runner import Stage
from a2llm.data.builder.text import word_error_rate, words
from a2llm.motion.layout import FPS


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the ``filter`` stage (None switches a check off). See the module docstring."""

    min_duration_s: float | None = 1.0
    max_duration_s: float | None = 30.0
    min_words_per_s: float | None = 0.5
    max_words_per_s: float | None = 5.0
    min_rms_dbfs: float | None = -50.0
    min_avg_logprob: float | None = -1.0
    max_clean_wer: float | None = 0.3
    require_usable: bool = True
    min_question_words: int | None = 3
    max_question_words: int | None = 40
    require_acoustic_emotion: bool = False
    require_motion: bool = True
    max_av_mismatch_s: float | None = 0.2


def _bounds(name: str, value: float, lo: float | None, hi: float | None, reasons: list[str]) -> None:
    if lo is not None and value < lo:
        reasons.append(f"{name} {value:.3g} < {lo:g}")
    if hi is not None and value > hi:
        reasons.append(f"{name} {value:.3g} > {hi:g}")


def evaluate(record: Record, config: FilterConfig) -> tuple[list[str], dict[str, Any]]:
    """Run the checks on one item.

    Returns:
        (reasons it fails, empty when it passes; the metrics measured).
    """
    c = config
    audio, asr, llm = record.output("audio"), record.output("asr"), record.output("llm")
    reasons: list[str] = []
    duration = float(audio["duration_s"])
    wps = len(words(asr["text"])) / duration if duration > 0 else float("inf")
    clean_wer = word_error_rate(asr["text"], llm["cleaned_answer"])
    question_words = len(words(llm["question"]))
    metrics: dict[str, Any] = {"duration_s": duration, "words_per_s": wps, "rms_dbfs": audio["rms_dbfs"],
                               "avg_logprob": asr["avg_logprob"], "clean_wer": clean_wer,
                               "question_words": question_words}
    _bounds("duration_s", duration, c.min_duration_s, c.max_duration_s, reasons)
    _bounds("words_per_s", wps, c.min_words_per_s, c.max_words_per_s, reasons)
    _bounds("rms_dbfs", audio["rms_dbfs"], c.min_rms_dbfs, None, reasons)
    _bounds("avg_logprob", asr["avg_logprob"], c.min_avg_logprob, None, reasons)
    _bounds("clean_wer", clean_wer, None, c.max_clean_wer, reasons)
    _bounds("question_words", question_words, c.min_question_words, c.max_question_words, reasons)
    if c.require_usable and not llm["usable"]:
        reasons.append(f"LLM judged it unusable: {llm.get('reason') or 'no reason given'}")
    if c.require_acoustic_emotion and record.output("emotion").get("emotion") is None:
        reasons.append(f"no acoustic emotion (SER top label {record.output('emotion').get('top_label')!r})")
    if c.require_motion:
        motion_s = record.output("smirk")["frames"] / FPS
        metrics["av_mismatch_s"] = abs(motion_s - duration)
        _bounds("av_mismatch_s", metrics["av_mismatch_s"], None, c.max_av_mismatch_s, reasons)
    return reasons, metrics


class FilterStage(Stage):
    """Apply the quality gates.

    Output: ``passed`` (bool), ``reasons`` (list of failed checks), ``metrics`` (what was measured).
    Requires audio, asr, emotion, llm and tts, plus smirk when ``require_motion``.
    """

    name = "filter"

    def __init__(self, config: FilterConfig | None = None):
        self.config = config or FilterConfig()
        # An item without motion cannot be judged until smirk has run, so with require_motion smirk is a
        # hard requirement (audio-only items stay blocked) rather than a reason recorded too early.
        self.requires = ("audio", "asr", "emotion", "llm", "tts") + (("smirk",) if self.config.require_motion else ())

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        reasons, metrics = evaluate(record, self.config)
        return {"passed": not reasons, "reasons": reasons, "metrics": metrics}
