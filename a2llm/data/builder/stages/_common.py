"""Helpers the model stages share: device and dtype choice, model loading with clear errors."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; anything else is returned as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    """A torch dtype from its name; ``"auto"`` is float16 on CUDA (half the memory, same WER) and float32 on CPU."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    try:
        value = getattr(torch, dtype)
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; expected 'auto', 'float32', 'float16' or 'bfloat16'")
    return value


def load_pretrained(what: str, name: str, loader: Callable[[], T]) -> T:
    """Call a ``from_pretrained`` loader, turning a missing model into an error that says what to do.

    Args:
        what: what the model is for, for the message (e.g. "ASR").
        name: the Hugging Face id or local folder.
        loader: zero-argument function that loads it.
    """
    try:
        return loader()
    except OSError as exc:
        raise OSError(
            f"could not load the {what} model {name!r}: {exc}\nGive a local folder, or download it first "
            f"(`huggingface-cli download {name}`) on a machine with internet and point the config at it") from exc
