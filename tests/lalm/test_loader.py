"""Native Step-Audio-2 loading from a tiny checkpoint folder in the released layout (tests/lalm/fixture.py)."""
import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from a2llm.data.collate import SYSTEM_PROMPTS
from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone
from a2llm.lalm.loader import (check_special_ids, check_token_layout, config_from_json, config_to_json,
                               load_step_audio2, main, save_step_audio2)
from a2llm.lalm.prompt import Audio, Message, PromptBuilder
from a2llm.lalm.text_tokenizer import train_nano_tokenizer
from a2llm.lalm.tokens import STEP_AUDIO2_LAYOUT, TokenLayout
from tests.lalm.fixture import tiny_tensors, write_tiny_step_audio2, write_tokenizer_config
from tests.lalm.test_backbone import _check_cached_equals_full

#: config.json of the release as STEP_AUDIO2_FACTS.md gives it.
RELEASED_CONFIG = {
    "architectures": ["StepAudio2ForCausalLM"], "model_type": "step_audio_2",
    "text_config": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                        num_attention_groups=4, num_key_value_heads=4, vocab_size=158720, max_seq_len=16384,
                        max_position_embeddings=16384, rope_theta=1e6, rope_scaling=None, rms_norm_eps=1e-6,
                        eos_token_id=151643, pad_token_id=151643, torch_dtype="bfloat16"),
    "audio_encoder_config": dict(n_mels=128, n_audio_ctx=1500, n_audio_state=1280, n_audio_head=20, n_audio_layer=32,
                                 n_codebook_size=4096, llm_dim=3584, kernel_size=3, adapter_stride=2)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_step_audio2(tmp_path_factory.mktemp("step_audio2_tiny"))


@pytest.fixture(scope="module")
def loaded(folder):
    return load_step_audio2(folder, dtype=torch.float32)


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "copy")


def test_loads_every_released_tensor(loaded):
    model, tok = loaded
    assert isinstance(model, StepAudio2Backbone) and not model.training
    state = model.state_dict()
    expected = tiny_tensors()
    assert set(state) == set(expected)
    for name, t in expected.items():
        assert torch.equal(state[name], t.float()), name
    assert not any(t.is_meta for t in model.buffers()) and not model.model.rotary_emb.inv_freq.is_meta
    assert not model.encoder.positional_embedding.weight.requires_grad
    assert TokenLayout.from_tokenizer(tok, 6561) == dataclasses.replace(STEP_AUDIO2_LAYOUT, vocab_size=158257)


def test_dtype_and_meta_device(folder):
    meta, _ = load_step_audio2(folder, device="meta")
    assert all(p.is_meta and p.dtype == torch.bfloat16 for p in meta.parameters())
    model, _ = load_step_audio2(folder)                           # the folder's torch_dtype
    assert model.lm_head.weight.dtype == torch.bfloat16 and model.encoder.conv1.weight.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(torch.tensor([[151666, 70, 151665]]))
    assert out.logits.shape == (1, 3, 158720) and torch.isfinite(out.logits).all()


def test_cached_decoding_on_the_loaded_checkpoint(loaded):
    model, tok = loaded
    builder = PromptBuilder(tok, STEP_AUDIO2_LAYOUT)
    clip = (0.1 * np.random.default_rng(0).standard_normal(9000)).astype(np.float32)
    p = builder.build([Message("system", SYSTEM_PROMPTS["aqaa"]), Message("human", [Audio(clip), "hi"])])
    batch = builder.collate([p])
    answer = torch.tensor([[STEP_AUDIO2_LAYOUT.audio_id(5), 104, STEP_AUDIO2_LAYOUT.audio_id(6560),
                            STEP_AUDIO2_LAYOUT.tts_end]])
    ids = torch.cat([batch.input_ids, answer], 1)
    slots = torch.cat([batch.audio_patch_mask, torch.zeros_like(answer, dtype=torch.bool)], 1)
    _check_cached_equals_full(model, ids, torch.ones_like(ids), prefix=batch.input_ids.shape[1],
                              audio=batch.input_audio, lengths=batch.input_audio_lengths, slots=slots)


def test_released_config_json_maps_to_the_full_preset():
    assert config_from_json(RELEASED_CONFIG) == BackboneConfig.full()
    assert config_from_json(config_to_json(BackboneConfig.nano(500))) == BackboneConfig.nano(500)
    bad = json.loads(json.dumps(RELEASED_CONFIG))
    bad["model_type"] = "qwen2"
    with pytest.raises(ValueError, match="step_audio_2"):
        config_from_json(bad)
    bad = json.loads(json.dumps(RELEASED_CONFIG))
    del bad["audio_encoder_config"]["n_audio_head"]
    with pytest.raises(ValueError, match=r"audio_encoder_config\.n_audio_head"):
        config_from_json(bad)
    bad = json.loads(json.dumps(RELEASED_CONFIG))
    bad["text_config"]["num_attention_groups"] = 8
    with pytest.raises(ValueError, match="agree"):
        config_from_json(bad)


def test_missing_folder_says_where_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="stepfun-ai/Step-Audio-2-mini.*checkpoints/Step-Audio-2-mini"):
        load_step_audio2(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_step_audio2(tmp_path / "empty")


def test_missing_and_unexpected_tensors_are_named(folder, tmp_path):
    d = _copy(folder, tmp_path)
    index_path = d / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    del index["weight_map"]["encoder.blocks.1.attn.key.weight"]
    save_file({"encoder.blocks.0.attn.key.bias": torch.zeros(16)}, str(d / "extra.safetensors"))
    index["weight_map"]["encoder.blocks.0.attn.key.bias"] = "extra.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"1 missing: encoder\.blocks\.1\.attn\.key\.weight; "
                                         r"1 unexpected: encoder\.blocks\.0\.attn\.key\.bias"):
        load_step_audio2(d, device="meta")


def test_wrong_shapes_are_named(folder, tmp_path):
    d = _copy(folder, tmp_path)
    config = json.loads((d / "config.json").read_text())
    config["audio_encoder_config"]["n_audio_ctx"] = 99
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"encoder\.positional_embedding\.weight \(100, 16\) \(model \(99, 16\)\)"):
        load_step_audio2(d, device="meta")


def test_token_layout_is_checked(folder, loaded):
    other = dataclasses.replace(STEP_AUDIO2_LAYOUT, bot=151667)
    with pytest.raises(ValueError, match=r"tokenizer\.json added_tokens gives <\|BOT\|> id 151666, expected 151667"):
        load_step_audio2(folder, device="meta", expected_layout=other)
    with pytest.raises(ValueError, match="bot: tokenizer 151666, expected 151667"):
        check_token_layout(loaded[1], other, 158720)


# --- the two inferred ids (<|BOT|> 151666, <tts_pad> 151695) against the tokenizer files ----------------------
def test_inferred_ids_are_confirmed_and_reported(folder, tmp_path, caplog, capsys):
    d = _copy(folder, tmp_path)
    assert check_special_ids(d) == {t: ["tokenizer.json added_tokens", "tokenizer.json model.vocab"]
                                    for t in ("<|BOT|>", "<tts_pad>")}
    write_tokenizer_config(d)
    assert check_special_ids(d)["<tts_pad>"] == ["tokenizer_config.json added_tokens_decoder",
                                                 "tokenizer.json added_tokens", "tokenizer.json model.vocab"]
    with caplog.at_level(logging.INFO, logger="a2llm.lalm.loader"):
        load_step_audio2(d, device="meta")
    assert "<|BOT|>=151666 (inferred) [tokenizer_config.json, tokenizer.json]" in caplog.text
    assert "<tts_pad>=151695 (inferred)" in caplog.text and "<tts_start>=151693 [" in caplog.text
    confirmed = main([str(d)])                                  # python -m a2llm.lalm.loader FOLDER
    assert len(confirmed) == 9 and all(confirmed.values())
    out = capsys.readouterr().out
    assert "tensor names/shapes match" in out and "<|BOT|>=151666 (inferred)" in out


def test_a_wrong_id_in_tokenizer_config_is_a_clear_error(folder, tmp_path):
    d = _copy(folder, tmp_path)
    write_tokenizer_config(d, {"<tts_pad>": 151700})
    msg = (r"tokenizer_config\.json added_tokens_decoder gives <tts_pad> id 151700, expected 151695.*"
           r"<tts_pad>: id inferred from token order.*STEP_AUDIO2_LAYOUT")
    with pytest.raises(ValueError, match=msg):
        check_special_ids(d)
    with pytest.raises(ValueError, match=msg):
        load_step_audio2(d, device="meta")


def test_a_wrong_id_in_tokenizer_json_is_a_clear_error(folder, tmp_path):
    d = _copy(folder, tmp_path)
    raw = json.loads((d / "tokenizer.json").read_text())
    for t in raw["added_tokens"]:
        if t["content"] == "<|BOT|>":
            t["id"] = 151667                                    # as if <|BOT|> were one further on
    raw["added_tokens"].append({**raw["added_tokens"][0], "id": 151666, "content": "<|reserved_0|>"})
    (d / "tokenizer.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"tokenizer\.json added_tokens gives <\|BOT\|> id 151667, expected 151666; "
                                         r"tokenizer\.json added_tokens gives id 151666 \(expected <\|BOT\|>\) to "
                                         r"'<\|reserved_0\|>'.*<\|BOT\|>: id inferred"):
        check_special_ids(d)


def test_an_absent_token_or_tokenizer_is_named(folder, tmp_path):
    d = _copy(folder, tmp_path)
    raw = json.loads((d / "tokenizer.json").read_text())
    raw["added_tokens"] = [t for t in raw["added_tokens"] if t["content"] != "<tts_pad>"]
    del raw["model"]["vocab"]["<tts_pad>"]
    (d / "tokenizer.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"<tts_pad> is in none of \['tokenizer\.json added_tokens'"):
        check_special_ids(d)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="tokenizer_config.json or tokenizer.json not found"):
        check_special_ids(tmp_path / "empty")


@pytest.mark.parametrize("shard", [None, 200_000])
def test_nano_round_trip(tmp_path, shard):
    tok = train_nano_tokenizer(["hello there", "how are you"], num_audio_codes=8, vocab_size=80)
    layout = TokenLayout.from_tokenizer(tok, 8)
    torch.manual_seed(0)
    model = StepAudio2Backbone(BackboneConfig.nano(layout.vocab_size)).eval()
    save_step_audio2(model, tmp_path, tokenizer=tok, max_shard_bytes=shard)
    files = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert (len(files) > 1) == (shard is not None)
    assert json.loads((tmp_path / "config.json").read_text())["component"] == "backbone"
    again, tok2 = load_step_audio2(tmp_path, expected_layout=layout)
    assert again.config == model.config and tok2.encode("hello") == tok.encode("hello")
    ids = torch.tensor([[layout.bot, 5, 6, layout.eot]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)
