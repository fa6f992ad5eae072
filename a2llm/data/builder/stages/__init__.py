"""The FLAME-QA builder's stages, in pipeline order, and how to build them from a config.

==========  ==========================  ==================================================================
stage       requires                    writes (under ``items/<id>/<stage>/``) / records
==========  ==========================  ==================================================================
audio       --                          ``audio.wav`` 16 kHz mono; duration, level
asr         audio                       transcript, ``avg_logprob`` (Whisper)
emotion     audio                       acoustic emotion in FLAME-QA's six classes (SER model)
llm         asr, emotion                cleaned answer, question, text emotion, usable (LLM)
tts         llm                         ``question.wav`` (espeak-ng)
smirk       --                          ``motion.npz`` [T, 58] at 25 fps (SMIRK)
filter      audio..tts (+ smirk)        passed, reasons, metrics
==========  ==========================  ==================================================================
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from a2llm.data.builder.config import from_mapping
from a2llm.data.builder.runner import Stage
from a2llm.data.builder.stages.asr import AsrConfig, AsrStage
from a2llm.data.builder.stages.audio import AudioConfig, AudioStage
from a2llm.data.builder.stages.emotion import EmotionConfig, EmotionStage
from a2llm.data.builder.stages.filter import FilterConfig, FilterStage
from a2llm.data.builder.stages.llm import LlmConfig, LlmStage
from a2llm.data.builder.stages.smirk import SmirkConfig, SmirkStage
from a2llm.data.builder.stages.tts import TtsConfig, TtsStage

#: name -> (stage class, its config dataclass), in pipeline order.
STAGES: dict[str, tuple[type[Stage], type]] = {
    "audio": (AudioStage, AudioConfig),
    "asr": (AsrStage, AsrConfig),
    "emotion": (EmotionStage, EmotionConfig),
    "llm": (LlmStage, LlmConfig),
    "tts": (TtsStage, TtsConfig),
    "smirk": (SmirkStage, SmirkConfig),
    "filter": (FilterStage, FilterConfig),
}
PIPELINE = tuple(STAGES)


def build_stage(name: str, config: Mapping[str, Mapping[str, Any]] | None = None) -> Stage:
    """Construct one stage from its section of the builder config (missing section = defaults).

    Model stages only load their model in ``load()``, so building is cheap.
    """
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(PIPELINE)}")
    stage_cls, config_cls = STAGES[name]
    section = (config or {}).get(name)
    return stage_cls(from_mapping(config_cls, section, f"config section {name!r}"))  # type: ignore[call-arg]


def check_config_sections(config: Mapping[str, Any]) -> None:
    """Refuse config sections that name no stage (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(config) - set(STAGES))
    if unknown:
        raise ValueError(f"config has section(s) {unknown} that are not stages; stages: {', '.join(PIPELINE)}")


def plan(names: Iterable[str], config: Mapping[str, Mapping[str, Any]] | None = None) -> list[Stage]:
    """The stages to run for a requested list: the requested ones plus everything they require,
    in pipeline order (so ``asr`` alone also runs ``audio`` first)."""
    wanted: dict[str, Stage] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        stage = build_stage(name, config)
        wanted[name] = stage
        todo.extend(stage.requires)
    return [wanted[n] for n in PIPELINE if n in wanted]


__all__ = ["STAGES", "PIPELINE", "build_stage", "check_config_sections", "plan",
           "AudioStage", "AsrStage", "EmotionStage", "LlmStage", "TtsStage", "SmirkStage", "FilterStage",
           "AudioConfig", "AsrConfig", "EmotionConfig", "LlmConfig", "TtsConfig", "SmirkConfig", "FilterConfig"]
