"""The curriculum on a tiny corpus: stages, what each trains, LoRA reset, resume, config errors."""
import json

import pytest
import torch

from a2llm.model import A2LLM, load_checkpoint_tokenizer
from a2llm.train.curriculum import (Curriculum, StageConfig, configure_trainable, draw_batch, load_config,
                                    lr_factor)
from a2llm.train.data import MemoryDataset
from tests.nano_fixture import tiny_stages, write_config


@pytest.fixture(scope="module")
def run(tiny_run):
    cfg, out, _ = tiny_run
    return cfg, out / cfg.final


def _lora(model):
    return {n: p.detach().clone() for n, p in model.backbone.named_parameters() if "lora_" in n}


def _base(model):
    return {n: p.detach().clone() for n, p in model.backbone.named_parameters() if "lora_" not in n}


def test_every_stage_writes_a_loadable_checkpoint_with_logs_and_curves(run):
    cfg, final = run
    assert final.name == "stage3"
    for s in cfg.stages:
        folder = final.parent / s.name
        for name in ("a2llm.json", "done.json", "log.csv", "curves.png", "tokenizer/tokenizer.json"):
            assert (folder / name).exists(), f"{s.name}: {name}"
        done = json.loads((folder / "done.json").read_text())
        assert done["steps"] == s.steps and done["ranks_in_sync"] is True
    model, tok = A2LLM.from_pretrained(final), load_checkpoint_tokenizer(final)
    assert model.config.backbone.vocab_size >= len(tok)
    assert model.motion_tokenizer is not None


def test_frozen_parts_stay_and_lora_reset_starts_afresh(run):
    cfg, final = run
    stages = {s.name: A2LLM.from_pretrained(final.parent / s.name) for s in cfg.stages}
    pre, s1, s2, ao = stages["pretrain"], stages["stage1"], stages["stage2"], stages["adapter-only"]
    for other in (s1, s2, stages["stage3"], ao):           # backbone weights trained only in pre-training
        for k, v in _base(pre).items():
            assert torch.equal(v, _base(other)[k]), k
    b1 = {k: v for k, v in _lora(s1).items() if "lora_B" in k}
    assert all(v.abs().sum() == 0 for v in (x for k, x in _lora(pre).items() if "lora_B" in k))
    assert any(v.abs().sum() > 0 for v in b1.values()), "stage 1 trained LoRA"
    a1 = {k: v for k, v in _lora(s1).items() if "lora_A" in k}
    a2 = {k: v for k, v in _lora(s2).items() if "lora_A" in k}
    assert all(not torch.allclose(a1[k], a2[k]) for k in a1), "stage 2 re-initialised LoRA"
    assert all(v.abs().sum() == 0 for k, v in _lora(ao).items() if "lora_B" in k), "adapter-only has no LoRA"
    c_pre = dict(pre.connector.named_parameters())
    assert any(not torch.equal(p, c_pre[n]) for n, p in s1.connector.named_parameters())


def test_parameter_groups_carry_the_stage_learning_rates(run):
    _, final = run
    model = A2LLM.from_pretrained(final)
    stage = StageConfig(name="x", train="lora+connector", lr_lora=1e-4, lr_connector=1e-5)
    groups = {g["name"]: g for g in configure_trainable(model, stage)}
    assert groups["lora"]["lr"] == 1e-4 and groups["connector"]["lr"] == 1e-5 and "backbone" not in groups
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for g in groups.values() for p in g["params"]}
    assert not any(p.requires_grad for n, p in model.backbone.named_parameters() if "lora_" not in n)
    assert lr_factor(0, StageConfig(name="y", steps=100, warmup=10)) == pytest.approx(0.1)
    assert lr_factor(99, StageConfig(name="y", steps=100, warmup=10)) == pytest.approx(0.1, abs=0.01)


def test_an_interrupted_stage_resumes_where_it_stopped(tiny_corpus, tiny_rvq, tmp_path, monkeypatch):
    """Pre-training has no dropout, so a resumed run must end with exactly the uninterrupted run's weights."""
    stages = tiny_stages()[:1]
    whole = load_config(write_config(tmp_path / "a", tiny_corpus, tiny_rvq, stages, final="pretrain"))
    Curriculum(whole, progress=False).run()
    part = load_config(write_config(tmp_path / "b", tiny_corpus, tiny_rvq, stages, final="pretrain"))
    calls = {"n": 0}
    real = Curriculum.validate

    def crash_on_second_log(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:                    # step 4: after the step-2 state was saved
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Curriculum, "validate", crash_on_second_log)
    with pytest.raises(KeyboardInterrupt):
        Curriculum(part, progress=False).run()
    assert torch.load(tmp_path / "b/out/pretrain/train_state.pt", weights_only=True)["step"] == 2
    monkeypatch.setattr(Curriculum, "validate", real)
    Curriculum(part, progress=False).run()
    a = A2LLM.from_pretrained(tmp_path / "a/out/pretrain").state_dict()
    b = A2LLM.from_pretrained(tmp_path / "b/out/pretrain").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "b/out/pretrain/log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="train="):
        StageConfig(name="x", train="everything")
    with pytest.raises(ValueError, match="unknown tasks"):
        StageConfig(name="x", tasks=(("dance", 1.0),))
    with pytest.raises(ValueError, match="high_dynamic_share"):
        StageConfig(name="x", subset="high_dynamic", high_dynamic_share=0.5)
    with pytest.raises(ValueError, match="high_dynamic_share"):
        StageConfig(name="x", high_dynamic_share=1.5)
    (tmp_path / "c.json").write_text(json.dumps({"data": "d", "out": "o", "rvq": "r", "stages": [{"name": "a"}],
                                                 "colour": "red"}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(tmp_path / "c.json")
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.json")


def test_mixed_batches_draw_the_high_dynamic_share():
    import numpy as np

    train, high = [("all", i) for i in range(100)], [("high", i) for i in range(10)]
    stage = StageConfig(name="s3", batch=16, high_dynamic_share=0.25)
    batch = draw_batch(np.random.default_rng(0), train, high, stage)
    assert len(batch) == 16 and sum(kind == "high" for kind, _ in batch) == 4
    plain = draw_batch(np.random.default_rng(0), train, None, StageConfig(name="s", batch=16))
    assert [k for k, _ in plain] == ["all"] * 16
    # without a share the draw is exactly the one before mixed batches existed (resumed runs stay identical)
    assert [i for _, i in plain] == np.random.default_rng(0).integers(0, 100, 16).tolist()


def test_read_share_puts_read_aloud_samples_with_read_tasks_into_every_batch(tiny_corpus, tiny_rvq, tmp_path,
                                                                              monkeypatch):
    from a2llm.data.collate import FlameQACollator
    from a2llm.data.nano.read import generate_read

    read = tmp_path / "read"
    generate_read(read, 6, workers=1, progress=False)
    stages = tiny_stages(read_share=0.5, read_tasks={"tts": 1, "asr": 1})[:1]
    stages[0].update(batch=4, steps=2)
    cfg = load_config(write_config(tmp_path / "c", tiny_corpus, tiny_rvq, stages, final="pretrain",
                                   read_data=str(read)))
    seen = []
    real = FlameQACollator.__call__

    def spy(self, samples, tasks=None):
        if len(samples) == 4:                     # training batches (validation batches are 3 samples)
            seen.append([(s.id, t) for s, t in zip(samples, tasks)])
        return real(self, samples, tasks)

    monkeypatch.setattr(FlameQACollator, "__call__", spy)
    Curriculum(cfg, progress=False).run()
    assert len(seen) == 2
    for batch in seen:
        assert [i.startswith("read-") for i, _ in batch] == [False, False, True, True]
        assert all(t in ("tts", "asr") for i, t in batch if i.startswith("read-"))
    with pytest.raises(ValueError, match="read_share"):
        StageConfig(name="x", read_share=1.0)
    with pytest.raises(ValueError, match="no answer"):
        StageConfig(name="x", read_share=0.5, read_tasks=(("aqaa", 1.0),))
    missing = load_config(write_config(tmp_path / "d", tiny_corpus, tiny_rvq, stages, final="pretrain"))
    with pytest.raises(ValueError, match="read_data"):
        Curriculum(missing, progress=False).run()


def test_the_word_layout_with_pronunciation_embeddings_trains_saves_and_reads(tiny_corpus, tiny_rvq, tmp_path):
    """What nano ships (sixth session): text_layout "word", lexicon_phones > 0 — a scratch model gets its
    lexicon from the tokenizer, keeps it through save/load, and forced-text TTS places the whole text."""
    from a2llm.generate import Generator
    from a2llm.lalm.lexicon import LexiconEmbedding
    from a2llm.model import A2LLM, load_checkpoint_tokenizer

    stage = dict(name="pretrain", init="scratch", train="all", steps=2, batch=3, lr_backbone=2e-3, motion_weight=0.0,
                 warmup=1, log_every=1, val_samples=3, tasks={"tts": 1, "aqaa": 1}, text_weight=5.0)
    path = write_config(tmp_path / "cfg", tiny_corpus, tiny_rvq, [stage], final="pretrain", text_layout="word",
                        lexicon_phones=4)
    final = Curriculum(load_config(path), progress=False).run()
    model = A2LLM.from_pretrained(final)
    tok = load_checkpoint_tokenizer(final)
    import csv
    rows = list(csv.DictReader(open(final / "log.csv")))      # the dialogue answers' own text loss is logged
    assert rows and float(rows[-1]["val_text_loss"]) > 0
    emb = model.backbone.model.embed_tokens
    assert isinstance(emb, LexiconEmbedding) and model.config.text_layout == "word"
    word = tok.encode("the", add_special_tokens=False)[-1]
    assert int(emb.lexicon[word].gt(0).sum()) >= 1                 # "the" has its phones
    assert int(emb.lexicon[tok.convert_tokens_to_ids("<tts_start>")].sum()) == 0
    s = MemoryDataset(tiny_corpus, "test").samples[0]
    text = tok.encode(s.response_text, add_special_tokens=False)
    a = Generator(model, tok).answer([s], "tts", max_new_tokens=len(text) * 3 + 30, with_motion=False,
                                     force_text=[text])[0]
    L = Generator(model, tok).layout
    assert [t for t in a.tokens if not L.is_audio(t) and t not in (L.tts_end, L.eot)] == text
    with pytest.raises(ValueError, match="lexicon_phones"):
        Curriculum(load_config(path, preset="full", backbone="x"), progress=False).new_model()


def test_ctc_settings_are_checked(tiny_corpus, tiny_rvq, tmp_path):
    with pytest.raises(ValueError, match="ctc_weight"):
        StageConfig(name="s", ctc_weight=-0.1)
    with pytest.raises(ValueError, match="text_weight"):
        StageConfig(name="s", text_weight=0)
    path = write_config(tmp_path, tiny_corpus, tiny_rvq, tiny_stages()[:1], final="pretrain", ctc_layer=2)
    with pytest.raises(ValueError, match="ctc_layer"):
        Curriculum(load_config(path, preset="full", backbone="x"), progress=False).new_model()
