"""Hugging Face-style component folders (DESIGN.md, "Checkpoints").

A component folder holds ``config.json`` (its frozen dataclass config, plus ``"component"``) and
``model.safetensors``. An A²-LLM checkpoint folder has an ``a2llm.json`` naming its parts::

    {"name": "a2llm-nano", "head": "open", "parts": {"rvq": "rvq", "connector": "connector", ...}}

Weights are safetensors only: nothing is ever unpickled.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

C = TypeVar("C")
MANIFEST = "a2llm.json"


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


def save_component(folder: str | Path, component: str, config: Any, state: dict[str, torch.Tensor]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (atomically: temporary names, then rename)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"component": component, **{k: _to_json(v) for k, v in dataclasses.asdict(config).items()}}
    for name, write in (("config.json", lambda p: Path(p).write_text(json.dumps(cfg, indent=2))),
                        ("model.safetensors", lambda p: save_file({k: v.contiguous() for k, v in state.items()}, p))):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / name)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return folder


def resolve_component(path: str | Path, part: str) -> Path:
    """A component folder itself, or the ``part`` of an A²-LLM checkpoint folder (via a2llm.json)."""
    path = Path(path)
    if (path / MANIFEST).exists():
        parts = json.loads((path / MANIFEST).read_text()).get("parts", {})
        if part not in parts:
            raise FileNotFoundError(f"{path / MANIFEST} names no {part!r} part (has {sorted(parts)})")
        path = path / parts[part]
    if not (path / "config.json").exists() or not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"{path} is not a component folder (needs config.json and model.safetensors)")
    return path


def load_component(path: str | Path, part: str, config_cls: type[C]) -> tuple[C, dict[str, torch.Tensor]]:
    """Read a component's config (checked against ``part``) and weights."""
    folder = resolve_component(path, part)
    raw = json.loads((folder / "config.json").read_text())
    component = raw.pop("component", None)
    if component != part:
        raise ValueError(f"{folder} holds a {component!r} component, not {part!r}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ValueError(f"{folder / 'config.json'}: unknown keys {sorted(unknown)} for {config_cls.__name__}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return config_cls(**kwargs), load_file(str(folder / "model.safetensors"))


def update_manifest(folder: str | Path, part: str, subfolder: str, **fields: Any) -> Path:
    """Add or replace one part in ``folder/a2llm.json`` (created if missing), plus top-level fields."""
    path = Path(folder) / MANIFEST
    data = json.loads(path.read_text()) if path.exists() else {"name": Path(folder).name, "parts": {}}
    data.setdefault("parts", {})[part] = subfolder
    data.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
