"""Training-side data helpers: a FLAME-QA split held in memory, and the nano text tokenizer built from it."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from a2llm.data.collate import SYSTEM_PROMPTS
from a2llm.data.format import FlameQASample, load_flame_qa


class MemoryDataset(Sequence):
    """All samples of one split decoded once (FLAC decoding would otherwise cost ~5 ms per sample per step).

    FLAME-QA-nano's 4,800 training samples take ~2 GB as float32 audio.
    """

    def __init__(self, root: str | Path, split: str, high_dynamic_only: bool = False):
        ds = load_flame_qa(root, split)
        keep = [i for i in range(len(ds)) if not high_dynamic_only or ds.record(i)["high_dynamic"]]
        self.samples: list[FlameQASample] = [ds[i] for i in keep]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> FlameQASample:
        return self.samples[i]


def _records(root: str | Path) -> list[dict]:
    ds = load_flame_qa(root, "train")
    return [ds.record(i) for i in range(len(ds))]


def corpus_texts(root: str | Path) -> list[str]:
    """Every question, answer and context turn of the training split, plus the system prompts."""
    ds = load_flame_qa(root, "train")
    texts = list(SYSTEM_PROMPTS.values())
    for i in range(len(ds)):
        r = ds.record(i)
        texts += [r["question_text"], r["response_text"]] + [t["text"] for t in r["context"]]
    return texts


def build_text_tokenizer(root: str | Path, out: str | Path, num_audio_codes: int, vocab_size: int = 600,
                         extra: str | Path | None = None):
    """Train the nano BPE on the training split's text (and ``extra``'s: the read-aloud corpus) and save it as
    a tokenizer folder at ``out``."""
    from a2llm.lalm.text_tokenizer import train_nano_tokenizer

    texts = corpus_texts(root) + ([r["response_text"] for r in _records(extra)] if extra else [])
    tok = train_nano_tokenizer(texts, num_audio_codes, vocab_size)
    Path(out).mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return tok
