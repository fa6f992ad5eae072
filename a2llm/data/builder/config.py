"""The builder's configuration file: one JSON object with a section per stage.

Example (every key is optional; the defaults are the stage config dataclasses' defaults)::

    {
      "asr":     {"model": "openai/whisper-large-v3", "device": "cuda", "language": "en"},
      "emotion": {"model": "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"},
      "llm":     {"backend": "openai", "model": "Qwen/Qwen2.5-7B-Instruct", "base_url": "http://localhost:8000/v1"},
      "tts":     {"voices": ["en-us", "en-gb"]},
      "smirk":   {"repo": "/opt/smirk", "checkpoint": "/opt/smirk/pretrained_models/SMIRK_em1.pt"},
      "filter":  {"max_duration_s": 20}
    }
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or section is malformed (unknown key, wrong type)."""


def load_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a builder config file (None -> empty config: every stage uses its defaults).

    Returns:
        stage name -> that stage's section (a dict).
    """
    if path is None:
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path} must hold a JSON object of stage sections, e.g. {{\"asr\": {{...}}}}")
    return data


def _check_type(value: Any, annotation: Any) -> bool:
    """Shallow runtime check of a JSON value against a dataclass field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_check_type(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool):
        return isinstance(value, annotation)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return True  # Any and anything exotic: let the stage validate


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build a config dataclass from a JSON section, refusing unknown keys and wrong types.

    Args:
        cls: a dataclass type.
        data: the section (None -> all defaults).
        where: what to call the section in error messages (e.g. ``"config 'asr'"``).
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    for key, value in data.items():
        if not _check_type(value, hints[key]):
            raise ConfigError(f"{where}: {key!r} should be {hints[key]}, got {value!r}")
        if isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            data[key] = tuple(value)
    return cls(**data)
