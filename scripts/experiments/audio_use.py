"""How much an A²-LLM folder uses its audio input: L_seq of spoken-input tasks with the real question audio vs with
another row's audio (rows shuffled) — `audio_use.py N FOLDER ...` on N val samples. A model that hears gets a much
higher loss from the wrong audio."""
import sys, json, torch, numpy as np
torch.set_num_threads(2)
from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.data.collate import CollatorConfig, FlameQACollator
from a2llm.lalm.tokens import TokenLayout
from a2llm.data.phones import PHONES
from a2llm.train.data import MemoryDataset
n = int(sys.argv[1])
val = MemoryDataset("data/flame-qa-nano", "val").samples[:n]
for folder in sys.argv[2:]:
    tok = load_checkpoint_tokenizer(folder)
    model = A2LLM.from_pretrained(folder).eval()
    collate = FlameQACollator(tok, TokenLayout.from_tokenizer(tok, len(PHONES)), CollatorConfig())
    out = {"folder": folder}
    for task in ("aqaa", "asr"):
        batch = collate(val, [task] * len(val))
        with torch.no_grad():
            real = float(model(batch, motion_weight=0).seq_loss)
            perm = torch.roll(torch.arange(len(val)), 1)
            shuffled = dict(batch.__dict__)
            shuffled["input_audio"], shuffled["input_audio_lengths"] = batch.input_audio[perm], batch.input_audio_lengths[perm]
            # keep each row's own patch count: lengths decide the patch count, so only same-length swaps are exact;
            # rows are padded to the batch max, so use each row's own length with the other row's samples
            shuffled["input_audio_lengths"] = batch.input_audio_lengths
            wrong = float(model(type(batch)(**shuffled), motion_weight=0).seq_loss)
        out[task] = {"real_audio": round(real, 3), "other_rows_audio": round(wrong, 3)}
    print(json.dumps(out), flush=True)
