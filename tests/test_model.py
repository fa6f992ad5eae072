"""A2LLM: parameter counts of the full preset, LoRA merge, save/load, and a few falling-loss training steps."""
import numpy as np
import pytest
import torch

from a2llm.connector import ConnectorConfig
from a2llm.data.collate import SYSTEM_PROMPTS, FlameQACollator
from a2llm.data.nano.generate import NanoConfig, make_sample
from a2llm.data.phones import PHONES
from a2llm.lalm.text_tokenizer import train_nano_tokenizer
from a2llm.lalm.tokens import TokenLayout
from a2llm.model import A2LLM, A2LLMConfig, LoraSettings, count_parameters, text_label_weights
from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
from a2llm.motion.tokenizer import MotionTokenizer


def test_full_preset_counts_match_the_seed():
    counts = count_parameters(A2LLMConfig.full())
    assert counts["backbone"] == 8_315_179_264                  # Step-Audio-2-mini, STEP_AUDIO2_FACTS.md
    assert 0.155e9 < counts["lora"] < 0.165e9                  # seed: ≈ 0.16 B
    assert 0.115e9 < counts["connector"] < 0.13e9              # seed: ≈ 0.12 B


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    samples = [make_sample(i, NanoConfig(seed=11)) for i in range(6)]
    texts = [s.question_text for s in samples] + [s.response_text for s in samples] + list(SYSTEM_PROMPTS.values())
    tok = train_nano_tokenizer(texts + ["hello"] * 3, len(PHONES), vocab_size=200)
    layout = TokenLayout.from_tokenizer(tok, len(PHONES))
    cfg = A2LLMConfig.nano(layout.vocab_size)
    cfg = A2LLMConfig(name="tiny", backbone=cfg.backbone, connector=ConnectorConfig.nano(cfg.backbone.hidden_size),
                      lora=LoraSettings(r=4, alpha=8, dropout=0.0), rvq=RVQConfig(width=16, latent_dim=16, codebook_size=16))
    rvq = MotionRVQVAE(cfg.rvq)
    rvq.train()
    rvq(torch.from_numpy(np.stack([s.motion[:40] for s in samples])))    # k-means init
    model = A2LLM(cfg, motion_tokenizer=MotionTokenizer(rvq.eval()))
    return model, FlameQACollator(tok, layout), samples


def test_lora_targets_exactly_the_seven_projections(setup):
    model, _, _ = setup
    wrapped = {n.rsplit(".", 1)[-1] for n, m in model.backbone.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not any("lora_" in n for n, _ in model.backbone.encoder.named_parameters())


def test_lora_merged_equals_unmerged(setup):
    model, collate, samples = setup
    model.eval()
    for p in model.lora_parameters():                            # non-zero B so LoRA changes the output
        torch.nn.init.normal_(p, std=0.02)
    ids = collate(samples[:2], "tqa").input_ids
    with torch.no_grad():
        a = model.backbone(ids).logits
        model.merge_lora()
        b = model.backbone(ids).logits
        model.unmerge_lora()
        c = model.backbone(ids).logits
        model.reset_lora()                                      # B = 0 again: LoRA is a no-op
        model.merge_lora()
        d = model.backbone(ids).logits
        model.unmerge_lora()
        e = model.backbone(ids).logits
    assert torch.allclose(a, b, atol=1e-4) and torch.allclose(a, c, atol=1e-5) and torch.allclose(d, e, atol=1e-5)


def test_training_forward_and_falling_loss(setup):
    model, collate, samples = setup
    model.train()
    batch = collate(samples[:4], ["aqaa", "tqa", "tts", "asr"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert np.isfinite(losses).all() and out.motion_loss > 0 and out.seq_loss > 0
    assert losses[-1] < 0.8 * losses[0]
    assert torch.isclose(out.loss, out.seq_loss + model.config.motion_weight * out.motion_loss)


def test_text_weighted_sequence_loss(setup):
    """Weights of 1 give the plain mean; a text weight w is the weighted mean of the text and audio tokens' mean
    cross-entropies, so it moves L_seq towards the text tokens' loss."""
    model, collate, samples = setup
    batch = collate(samples[:3], ["tqa", "aqaa", "tts"])
    layout = collate.layout
    with torch.no_grad():
        plain = model(batch).seq_loss
        ones = model(batch, label_weights=torch.ones(batch.labels.shape)).seq_loss
        weights = text_label_weights(batch.labels, layout.is_audio, 5.0)
        weighted = model(batch, label_weights=weights).seq_loss
        logits = model(batch).logits
    assert torch.isclose(plain, ones, atol=1e-6)
    labels = batch.labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=-100,
                                           reduction="none")
    text = (labels != -100) & ~layout.is_audio(labels)
    audio = (labels != -100) & layout.is_audio(labels)
    assert text.any() and audio.any()
    expect = (5 * ce[text].sum() + ce[audio].sum()) / (5 * text.sum() + audio.sum())
    assert torch.isclose(weighted, expect, atol=1e-5)
    assert set(weights[batch.labels != -100].unique().tolist()) == {1.0, 5.0}


def test_save_and_load_round_trip(setup, tmp_path):
    model, collate, samples = setup
    model.eval()
    for p in model.lora_parameters():
        torch.nn.init.normal_(p, std=0.02)
    model.save_pretrained(tmp_path / "ckpt")
    again = A2LLM.from_pretrained(tmp_path / "ckpt")
    batch = collate(samples[:2], "aqaa")
    with torch.no_grad():
        a, b = model(batch), again(batch)
    assert torch.allclose(a.logits, b.logits, atol=1e-5) and torch.allclose(a.motion_logits, b.motion_logits, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="a2llm.json"):
        A2LLM.from_pretrained(tmp_path)


def test_batches_carry_the_transcript_of_their_input_audio(setup):
    _, collate, samples = setup
    batch = collate(samples[:4], ["aqaa", "repeat", "tts", "asr"])
    text = lambda s: collate.tok.encode(s, add_special_tokens=False)          # noqa: E731
    lengths = batch.transcript_lengths.tolist()
    assert lengths == [len(text(samples[0].question_text)), len(text(samples[1].response_text)), 0,
                       len(text(samples[3].question_text))]
    assert batch.transcripts[0, :lengths[0]].tolist() == text(samples[0].question_text)
    assert (batch.transcripts[2] == -100).all()


def test_ctc_loss_reads_the_chosen_layer_at_the_audio_positions_and_trains_only_its_inputs(tmp_path):
    import dataclasses

    torch.manual_seed(0)
    samples = [make_sample(i, NanoConfig(seed=11)) for i in range(4)]
    texts = [s.question_text for s in samples] + [s.response_text for s in samples] + list(SYSTEM_PROMPTS.values())
    tok = train_nano_tokenizer(texts, len(PHONES), vocab_size=200)
    layout = TokenLayout.from_tokenizer(tok, len(PHONES))
    base = A2LLMConfig.nano(layout.vocab_size)
    cfg = A2LLMConfig(name="tiny-ctc", backbone=dataclasses.replace(base.backbone, ctc_layer=2),
                      connector=ConnectorConfig.nano(128), lora=LoraSettings(r=4, alpha=8, dropout=0.0),
                      rvq=RVQConfig(width=16, latent_dim=16, codebook_size=16))
    model = A2LLM(cfg).train()
    collate = FlameQACollator(tok, layout)
    batch = collate(samples, ["asr", "aqaa", "tts", "repeat"])
    head = model.backbone.ctc_head[-1]
    assert head.out_features == layout.vocab_size + 1                  # + the blank
    plain = model(batch, motion_weight=0.0)
    assert plain.ctc_loss is None
    out = model(batch, motion_weight=0.0, ctc_weight=0.5)
    assert torch.isfinite(out.ctc_loss) and out.ctc_loss > 0
    assert torch.allclose(out.loss, out.seq_loss + 0.5 * out.ctc_loss)
    for p in model.backbone.parameters():
        p.requires_grad_(True)
    model(batch, motion_weight=0.0, ctc_weight=0.5).ctc_loss.backward()
    layers = model.backbone.model.layers
    grad = lambda layer: layer.mlp.down_proj.base_layer.weight.grad       # noqa: E731
    assert head.weight.grad.abs().sum() > 0 and model.backbone.adapter.linear2.weight.grad.abs().sum() > 0
    assert grad(layers[1]).abs().sum() > 0 and grad(layers[2]) is None   # above the CTC layer: untouched
    # a text-only batch gives a zero loss that still reaches the head (no unused parameters under DDP)
    model.zero_grad()
    text_only = model(collate(samples[:2], "tts"), motion_weight=0.0, ctc_weight=0.5)
    assert float(text_only.ctc_loss.detach()) == 0.0
    # the head is saved and loaded with the backbone; generation does not use it
    model.save_pretrained(tmp_path / "m", text_tokenizer=tok)
    loaded = A2LLM.from_pretrained(tmp_path / "m")
    assert loaded.backbone.config.ctc_layer == 2
    assert torch.equal(loaded.backbone.ctc_head[-1].weight, head.weight)
    with pytest.raises(ValueError, match="CTC head"):
        A2LLM(A2LLMConfig(name="x", backbone=base.backbone, connector=cfg.connector, lora=cfg.lora,
                          rvq=cfg.rvq))(batch, motion_weight=0.0, ctc_weight=0.5)
