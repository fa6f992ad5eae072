"""What the CTC head hears: `ctc_decode.py N SPLIT FOLDER` — greedy CTC transcripts of the first N spoken questions
of SPLIT (test: held-out voices) from decoder layer ``ctc_layer``: topic right and word recall (seventh session).
Needs a model trained with ``ctc_layer`` (its backbone keeps the head)."""
import difflib
import sys

import numpy as np
import torch

from a2llm.data.collate import CollatorConfig, FlameQACollator
from a2llm.data.nano.templates import TOPICS
from a2llm.generate import Generator, normalise_text
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.data import MemoryDataset

torch.set_num_threads(1)
n, split, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
holdout = "voice" if split == "test" else None
qs = [s for s in MemoryDataset("data/flame-qa-nano", split).samples if s.meta.get("holdout") == holdout][:n]
tok, model = load_checkpoint_tokenizer(folder), A2LLM.from_pretrained(folder).eval()
bb = model.backbone
collate = FlameQACollator(tok, Generator(model, tok).layout, CollatorConfig(text_layout=model.config.text_layout))
blank, topic_ok, recall = bb.config.vocab_size, [], []
for i in range(0, len(qs), 16):
    chunk = qs[i:i + 16]
    b = collate(chunk, "asr")
    with torch.no_grad():
        out = bb(b.input_ids, b.attention_mask, b.input_audio, b.input_audio_lengths, b.audio_patch_mask,
                 capture_layer=bb.config.ctc_layer)
    for r, s in enumerate(chunk):
        best = bb.ctc_head(out.layer_hidden[r][b.audio_patch_mask[r]]).argmax(-1).tolist()
        text = tok.decode([t for j, t in enumerate(best) if t != blank and (j == 0 or t != best[j - 1])])
        hyp, ref = normalise_text(text).split(), normalise_text(s.question_text).split()
        topic = [t for t in TOPICS if normalise_text(t) in " ".join(ref)]
        topic_ok.append(bool(topic) and normalise_text(topic[0]) in " ".join(hyp))
        match = difflib.SequenceMatcher(a=ref, b=hyp).get_matching_blocks()
        recall.append(sum(m.size for m in match) / max(1, len(ref)))
        if len(recall) <= 4:
            print(f"{s.question_text} -> {text}")
print(f"{split}: CTC topic right {np.mean(topic_ok):.3f}, word recall {np.mean(recall):.3f} ({len(recall)} questions)")
