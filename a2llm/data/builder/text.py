"""Word-level text helpers for the quality filters: normalisation and word error rate."""
from __future__ import annotations

import re
import unicodedata

# Letters/digits with inner apostrophes ("don't", "it's") count as one word; other punctuation is dropped.
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without punctuation (Unicode-aware; curly apostrophes folded)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return _WORD.findall(text)


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER = edit distance / number of reference words, on normalised words.

    An empty reference gives 0.0 when the hypothesis is empty too, else 1.0 (everything inserted).
    """
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
