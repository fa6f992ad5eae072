"""Export the items that passed the filter as FLAME-QA samples (one JSON object per line).

A sample::

    {"id", "source",
     "question": {"text", "audio", "voice"},
     "answer":   {"text" (LLM-cleaned), "asr_text", "audio" (16 kHz wav), "duration_s",
                  "acoustic_emotion", "text_emotion"},
     "motion": path of the [T, 58] 25 fps .npz (or null), "metrics": the filter's measurements}

Paths are absolute, so the file can be read from anywhere on the machine that built it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from a2llm.data.builder.files import atomic_write_bytes
from a2llm.data.builder.manifest import Manifest, Record
from a2llm.data.builder.stages import PIPELINE


def sample(record: Record) -> dict[str, Any]:
    """The FLAME-QA sample of an item that passed the filter."""
    audio, asr, emo, llm, tts = (record.output(s) for s in ("audio", "asr", "emotion", "llm", "tts"))
    motion = record.output("smirk")["motion"] if record.status("smirk") == "done" else None
    return {
        "id": record.id,
        "source": str(record.source),
        "question": {"text": llm["question"], "audio": str(record.path(tts["audio"])), "voice": tts["voice"]},
        "answer": {"text": llm["cleaned_answer"], "asr_text": asr["text"], "audio": str(record.path(audio["audio"])),
                   "duration_s": audio["duration_s"], "acoustic_emotion": emo.get("emotion"),
                   "text_emotion": llm["text_emotion"]},
        "motion": str(record.path(motion)) if motion else None,
        "metrics": record.output("filter")["metrics"],
    }


def export_samples(manifest: Manifest, out: str | Path) -> int:
    """Write every passed item's sample to ``out`` (JSON lines, atomically).

    Returns:
        The number of samples written.
    """
    lines = [json.dumps(sample(r), ensure_ascii=False) + "\n" for r in manifest.records(PIPELINE)
             if r.status("filter") == "done" and r.output("filter")["passed"]]
    atomic_write_bytes(out, "".join(lines).encode("utf-8"))
    return len(lines)
