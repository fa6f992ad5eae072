"""Phone pre-training of the nano audio encoder: labels, augmentation, a short fit, save/load, the curriculum's
use of it (frozen or with its own learning rate)."""
import json

import numpy as np
import pytest
import torch

from a2llm.lalm.encoder import AudioEncoder
from a2llm.train.curriculum import Curriculum, StageConfig, configure_trainable, load_config
from a2llm.train.encoder import (IGNORE, EncoderTrainConfig, PhoneEncoder, augment_mel, collate_clips,
                                 load_encoder_weights, nano_encoder_config, question_clips, train_encoder)
from tests.nano_fixture import tiny_stages, write_config


@pytest.fixture(scope="module")
def fitted(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("phone-encoder")
    cfg = EncoderTrainConfig(steps=40, batch=8, lr=3e-3, warmup=5, log_every=20, val_samples=8)
    return out, train_encoder(tiny_corpus, out, cfg=cfg, progress=False)


def test_question_labels_cover_the_clip_at_the_encoders_rate(tiny_corpus):
    from a2llm.data.phones import SILENCE_ID, collapse

    clips = question_clips(tiny_corpus, "train")
    assert clips
    for audio, phones in clips:
        assert len(phones) == round(25 * len(audio) / 16000)
        assert phones[0] == SILENCE_ID and phones[-1] == SILENCE_ID       # lead and tail silence
        assert len(collapse(phones)) >= 3            # the shortest questions ("Why?") are a few phones
    audio, lengths, labels = collate_clips(clips[:4])
    assert audio.shape == (4, int(lengths.max()))
    for b, (a, phones) in enumerate(clips[:4]):
        n = int((labels[b] != IGNORE).sum())
        assert abs(n - len(phones)) <= 1 and torch.equal(labels[b, :n], torch.from_numpy(phones[:n]))
        assert (labels[b, n:] == IGNORE).all()


def test_augmentation_keeps_shape_and_padding_and_is_off_when_disabled():
    gen = torch.Generator().manual_seed(0)
    mel = torch.rand(3, 128, 20) - 1
    lengths = torch.tensor([20, 12, 5])
    mel = mel * (torch.arange(20)[None, :] < lengths[:, None])[:, None, :]
    off = augment_mel(mel, lengths, gen, EncoderTrainConfig(warp=0, freq_mask=0))
    assert torch.equal(off, mel)
    on = augment_mel(mel, lengths, gen, EncoderTrainConfig(warp=0.2, freq_mask=16))
    assert on.shape == mel.shape and not torch.equal(on, mel)
    assert (on[1, :, 12:] == 0).all() and (on[2, :, 5:] == 0).all()


def test_a_short_fit_learns_phones_and_saves_what_the_curriculum_loads(fitted):
    out, metrics = fitted
    log = (out / "train_log.csv").read_text().splitlines()
    assert len(log) == 3                         # header + 2 rows
    assert metrics["val"]["frame_accuracy"] > 0.3        # silence alone is ~0.2 of the frames
    for name in ("config.json", "model.safetensors", "val_metrics.json", "done.json"):
        assert (out / name).exists()
    assert set(json.loads((out / "val_metrics.json").read_text())) >= {"val", "test_held_out_voices", "seconds"}
    enc = AudioEncoder(nano_encoder_config())
    load_encoder_weights(enc, out)
    ref = PhoneEncoder(nano_encoder_config(), 1)
    ref.encoder.load_state_dict(enc.state_dict())
    from safetensors.torch import load_file

    saved = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in enc.state_dict().items())
    assert "head.weight" in saved


def test_a_finished_folder_is_not_trained_again(fitted, tiny_corpus):
    out, metrics = fitted
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train_encoder(tiny_corpus, out, cfg=EncoderTrainConfig(steps=1), progress=False) == metrics
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_loading_errors_are_clear(fitted, tmp_path):
    out, _ = fitted
    with pytest.raises(FileNotFoundError, match="python -m a2llm.train encoder"):
        load_encoder_weights(AudioEncoder(nano_encoder_config()), tmp_path)
    import dataclasses

    other = dataclasses.replace(nano_encoder_config(), n_audio_layer=1)
    with pytest.raises(ValueError, match="sizes"):
        load_encoder_weights(AudioEncoder(other), out)


def test_a_corpus_without_question_phones_is_refused(tiny_corpus, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_corpus, old)
    for shard in (old / "train").glob("*.jsonl"):
        rows = [json.loads(line) for line in shard.read_text().splitlines()]
        for r in rows:
            r["meta"].pop("question_phones")
        shard.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="regenerate"):
        question_clips(old, "train")


def test_the_curriculum_starts_from_it_and_keeps_it_frozen(fitted, tiny_corpus, tiny_rvq, tmp_path):
    out, _ = fitted
    stages = tiny_stages(lr_encoder=0.0)[:1]
    cfg = load_config(write_config(tmp_path / "c", tiny_corpus, tiny_rvq, stages, final="pretrain", encoder=str(out)))
    Curriculum(cfg, progress=False).run()
    from a2llm.model import A2LLM

    model = A2LLM.from_pretrained(tmp_path / "c" / "out" / "pretrain")
    enc = AudioEncoder(nano_encoder_config())
    load_encoder_weights(enc, out)
    trained = model.backbone.encoder.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in enc.state_dict().items()), "the frozen encoder moved"
    groups = {g["name"]: g for g in configure_trainable(model, StageConfig(name="x", train="all", lr_encoder=0.0))}
    assert "encoder" not in groups
    assert not any(p.requires_grad for p in model.backbone.encoder.parameters())
    assert all(p.requires_grad for p in model.backbone.adapter.parameters())
    groups = {g["name"]: g for g in configure_trainable(model, StageConfig(name="x", train="all", lr_encoder=1e-4,
                                                                           lr_backbone=1e-3))}
    assert groups["encoder"]["lr"] == 1e-4 and groups["backbone"]["lr"] == 1e-3
    enc_ids = {id(p) for p in model.backbone.encoder.parameters()}
    assert enc_ids == {id(p) for p in groups["encoder"]["params"]}
    assert not enc_ids & {id(p) for p in groups["backbone"]["params"]}


def test_stage_and_curriculum_config_errors():
    with pytest.raises(ValueError, match="lr_encoder"):
        StageConfig(name="x", train="lora+connector", lr_encoder=0.0)
    with pytest.raises(ValueError, match="lr_encoder"):
        StageConfig(name="x", train="all", lr_encoder=-1.0)
    assert np.isclose(StageConfig(name="x", train="all").lr_backbone, 1e-4)
