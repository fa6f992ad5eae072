"""Phone pre-training of the nano audio encoder at other sizes or step counts (eighth session).

`encoder_probe.py OUT STEPS WIDTH LAYERS HEADS` trains `a2llm.train.encoder.train_encoder` on data/flame-qa-nano +
data/flame-qa-nano-read with an encoder of width WIDTH (n_audio_state), LAYERS blocks and HEADS heads instead of
nano's 64 / 2 / 2, and prints its validation metrics (frame accuracy and PER on training-voice validation questions
and held-out-voice test questions; also in OUT/val_metrics.json). With nano's own sizes it is exactly
`python -m a2llm.train encoder --steps STEPS`.
"""
import dataclasses
import sys

import a2llm.train.encoder as E

out, steps, width, layers, heads = sys.argv[1], *map(int, sys.argv[2:6])
base = E.nano_encoder_config()
E.nano_encoder_config = lambda: dataclasses.replace(base, n_audio_state=width, n_audio_layer=layers,
                                                    n_audio_head=heads)
metrics = E.train_encoder("data/flame-qa-nano", out, read_data="data/flame-qa-nano-read",
                          cfg=E.EncoderTrainConfig(steps=steps), progress=False)
print(out, metrics)
