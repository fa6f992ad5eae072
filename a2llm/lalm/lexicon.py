"""Pronunciation-aware text embeddings for A²-LLM-nano.

Step-Audio-2's LLM learned to read in pre-training on millions of hours; nano starts from nothing and has an
hour on two cores. Trained on word-level BPE pieces alone it must memorise each word's phones from the few
dozen times it hears it, and it cannot say a word it never heard (docs/NANO.md: first words right, then drift).
So each text token's input embedding also carries the token's pronunciation — its espeak-ng phone classes (the
same 52 classes as the audio tokens), each through an embedding of its own position in the word:

    e(token) = E[token] + sum_k P[k, phone_k(token)]        k < K; padding positions add nothing

The lexicon (token -> up to K phone classes) is built once from the text tokenizer with espeak-ng when a nano
model is made (:func:`build_lexicon`) and saved with the weights as a buffer, so loading needs no espeak-ng.
An all-zero lexicon is a plain embedding. Only the input side changes: the LM head still scores tokens alone.
"""
from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from a2llm.data.phones import PHONES, SILENCE_ID, phone_class


class LexiconEmbedding(nn.Embedding):
    """``nn.Embedding`` plus each token's phones (``lexicon``: [V, K] phone class + 1, 0 = none).

    Drop-in for Qwen2's ``embed_tokens``: ``weight`` keeps its name and shape; ``phones`` [K, C + 1, d] and the
    ``lexicon`` buffer are saved beside it (state-dict keys ``embed_tokens.phones`` / ``embed_tokens.lexicon``).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_phones: int, num_classes: int = len(PHONES)):
        super().__init__(num_embeddings, embedding_dim)
        if max_phones < 1:
            raise ValueError(f"max_phones must be >= 1, got {max_phones}")
        self.max_phones, self.num_classes = max_phones, num_classes
        self.phones = nn.Parameter(torch.randn(max_phones, num_classes + 1, embedding_dim) * 0.02)
        self.register_buffer("lexicon", torch.zeros(num_embeddings, max_phones, dtype=torch.long))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[...] token ids -> [..., d]."""
        if input_ids.numel() >= self.num_embeddings:    # a training batch: build the whole table once
            return F.embedding(input_ids, self.weight + self._pronunciation(self.lexicon))
        return F.embedding(input_ids, self.weight) + self._pronunciation(self.lexicon[input_ids])

    def _pronunciation(self, lex: torch.Tensor) -> torch.Tensor:
        """[..., K] lexicon rows -> [..., d] the sum of their position-wise phone embeddings."""
        k = torch.arange(self.max_phones, device=lex.device)
        return (self.phones[k, lex] * (lex > 0).unsqueeze(-1).to(self.phones.dtype)).sum(-2)

    def set_lexicon(self, table: torch.Tensor) -> None:
        """Install a [V, K] table (phone class + 1 per position, 0 = none), e.g. from :func:`build_lexicon`."""
        if tuple(table.shape) != tuple(self.lexicon.shape):
            raise ValueError(f"lexicon table {tuple(table.shape)} does not fit {tuple(self.lexicon.shape)} "
                             f"(vocabulary × max_phones)")
        if int(table.min()) < 0 or int(table.max()) > self.num_classes:
            raise ValueError(f"lexicon entries must lie in [0, {self.num_classes}] (phone class + 1, 0 = none)")
        self.lexicon.copy_(table.to(self.lexicon))


def piece_phones(piece: str) -> list[int]:
    """The espeak-ng phone classes (silence dropped) of one text piece as written ("party", "ing", "'s");
    [] for a piece without letters (punctuation, spaces, special tokens)."""
    from a2llm.data import espeak

    word = re.sub(r"[^A-Za-z']", "", piece)
    if not re.search("[A-Za-z]", word):
        return []
    return [c for c in (phone_class(p.symbol) for p in espeak.synthesize(word).phonemes) if c != SILENCE_ID]


def build_lexicon(tokenizer, vocab_size: int, max_phones: int) -> torch.Tensor:
    """[vocab_size, max_phones] table for :class:`LexiconEmbedding` from a Hugging Face text tokenizer: each
    piece's phones (:func:`piece_phones` of its decoded text; longer words keep their first ``max_phones``).
    Ids the tokenizer does not know (specials, audio codes) stay 0. ~20 ms per piece (espeak-ng)."""
    table = torch.zeros(vocab_size, max_phones, dtype=torch.long)
    # special / added tokens (<|BOT|>, <tts_start>, ...) are roles, not words
    specials = set(getattr(tokenizer, "all_special_ids", [])) | set(tokenizer.get_added_vocab().values())
    for i in range(min(len(tokenizer), vocab_size)):
        if i in specials:
            continue
        phones = piece_phones(tokenizer.decode([i]))[:max_phones]
        if phones:
            table[i, :len(phones)] = torch.tensor(phones) + 1
    return table
