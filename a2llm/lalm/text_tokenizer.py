"""The nano text tokenizer: a small BPE (Hugging Face ``tokenizers``) trained on the corpus text.

Its vocabulary holds, in order: the BPE pieces, the special tokens of :mod:`a2llm.lalm.tokens`, and one
``<audio_k>`` token per audio code, so ``TokenLayout.from_tokenizer`` finds everything and decoding a
generated sequence shows the audio codes by name. Saved and loaded as a standard tokenizer folder.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from a2llm.lalm.tokens import ROLES, SPECIAL_TOKENS


def train_nano_tokenizer(texts: Iterable[str], num_audio_codes: int, vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """Train a BPE over ``texts`` (plus the role names) and add the special and audio tokens.

    Args:
        texts: corpus sentences (questions, answers, system prompts).
        num_audio_codes: number of ``<audio_k>`` tokens to append.
        vocab_size: BPE size before the special and audio tokens.
    """
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    # Printable ASCII is always in the alphabet, so any typed English question tokenizes without <unk>.
    alphabet = ["\n"] + [chr(c) for c in range(32, 127)]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>"], initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(list(texts) + list(ROLES), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                   eos_token="<|EOT|>")
    fast.add_special_tokens({"additional_special_tokens": [t for t in SPECIAL_TOKENS if t != "<|endoftext|>"]})
    fast.add_tokens([f"<audio_{k}>" for k in range(num_audio_codes)], special_tokens=True)
    return fast


def load_text_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer folder written by ``save_pretrained`` (nano's, or the released Step-Audio-2 one)."""
    folder = Path(folder)
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer.json in {folder}")
    return PreTrainedTokenizerFast.from_pretrained(str(folder))
