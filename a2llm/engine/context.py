"""What the engine keeps of a dialogue between turns: text, within a token budget.

Training shows earlier turns as text (FLAME-QA context turns: the visitor's words and the avatar's replies), so
the engine keeps them the same way:

* a reply stays as its text (``EngineConfig.context_replies == "text"``, the default);
* a spoken turn stays as its **transcript**: after the reply, the model's own ASR subtask (system prompt "Transcribe
  the user's speech.") writes what it heard, and the turn's audio in the cache is replaced by that text. The
  transcript is also what the UI shows as the visitor's turn (:attr:`TurnMetrics.heard`);
* when a new turn would not fit ``EngineConfig.context_budget`` tokens (the dialogue so far + the new turn + the
  longest reply, ``max_new_tokens``), the cache is rebuilt from text: the system turn and as many of the newest
  exchanges as fit, the oldest dropped (:func:`newest_that_fit`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from a2llm.data.collate import SYSTEM_PROMPTS
from a2llm.generate import kind_masks
from a2llm.lalm.prompt import Audio, Message, PromptBuilder


def newest_that_fit(costs: Sequence[int], room: int) -> int:
    """How many of the newest exchanges fit ``room`` tokens: the largest k with sum(costs[-k:]) <= room.

    Args:
        costs: tokens of each earlier exchange, oldest first.
        room: tokens left for them.
    """
    total, k = 0, 0
    for c in reversed(costs):
        if total + c > room:
            break
        total, k = total + c, k + 1
    return k


def exchange_ids(prompts: PromptBuilder, human: str, assistant: str) -> list[int]:
    """``<|BOT|>human\\n{human}<|EOT|><|BOT|>assistant\\n{assistant}<|EOT|>`` as token ids."""
    return prompts.build([Message("human", human), Message("assistant", assistant)], reply=None).input_ids.tolist()


@torch.no_grad()
def transcribe(backbone, prompts: PromptBuilder, clip: np.ndarray, sample_rate: int, device: torch.device,
               max_tokens: int = 96) -> str:
    """The model's ASR subtask on one clip (greedy text, its own KV cache: the dialogue's is not touched).

    Args:
        backbone: the A²-LLM backbone (LoRA active or merged).
        clip: [N] float32 speech as the model heard it (with the question margin).
    """
    L = prompts.layout
    prompt = prompts.build([Message("system", SYSTEM_PROMPTS["asr"]), Message("human", Audio(clip, sample_rate))],
                           reply="text")
    ids = prompt.input_ids[None].to(device)
    audio = torch.from_numpy(prompt.audios[0])[None, None].to(device)
    logits, _, state = backbone.prefill(ids, None, audio, torch.tensor([[audio.shape[-1]]], device=device),
                                        prompt.audio_patch_mask[None].to(device))
    logits = logits[0]
    allowed = kind_masks(L, logits.shape[-1], str(logits.device))[0].clone()     # text tokens ...
    allowed[L.eot] = True                                                         # ... and the end of the turn
    text: list[int] = []
    for _ in range(max_tokens):
        nxt = int(logits.float().masked_fill(~allowed, float("-inf")).argmax())
        if nxt == L.eot:
            break
        text.append(nxt)
        logits, _, state = backbone.step(torch.tensor([[nxt]], device=device), state)
        logits = logits[0]
    return prompts.tok.decode(text, skip_special_tokens=True).strip()
