"""How often the word layout puts a word's text token right after the previous word's, with no speech between.

`adjacent_words.py [N]` lays out N training answers of data/flame-qa-nano and of data/flame-qa-nano-read as TTS
rows (word layout, the committed checkpoint's tokenizer) and counts the word-start pieces (a SentencePiece "▁"
in front) after the first that come with no speech frame since the previous word start (ninth session: 5.1 % of
FLAME-QA-nano's — words espeak-ng gave no word event of their own, like "did not" — and 0 % of the read-aloud
corpus's), the case `WordPacing` lets through only when the word is the model's own best text token.
"""
import sys

from a2llm.data.collate import CollatorConfig, FlameQACollator
from a2llm.generate import WordPacing, layout_for, word_start_mask
from a2llm.model import load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
tok = load_checkpoint_tokenizer("checkpoints/a2llm-nano")
L = layout_for(tok)
collate = FlameQACollator(tok, L, CollatorConfig(text_layout="word"))
starts = word_start_mask(tok)
for data in ("data/flame-qa-nano", "data/flame-qa-nano-read"):
    total = adjacent = 0
    for s in MemoryDataset(data, "train").samples[:n]:
        ids = collate.build(s, "tts").ids
        pacing = WordPacing(starts, L)       # counts the speech frames since the last word start
        for t in ids[ids.index(L.tts_start) + 1:]:
            if pacing.starts_word(t) and pacing.frames is not None:
                total += 1
                adjacent += pacing.frames == 0
            pacing.feed(t)
    print(f"{data}: {adjacent} of {total} word starts follow the previous word's with no speech "
          f"({100 * adjacent / max(total, 1):.1f} %)")
