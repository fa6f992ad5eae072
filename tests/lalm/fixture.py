"""A tiny Step-Audio-2 checkpoint folder in the released file layout, written by the tests themselves.

Same config.json keys as stepfun-ai/Step-Audio-2-mini (tiny numbers), the released tensor names and shapes
(built here from the table in shared/STEP_AUDIO2_FACTS.md, not from the model code, so the loader is checked
against the facts), two bf16 safetensors shards with a ``model.safetensors.index.json``, and a byte-level
``tokenizer.json`` whose special tokens and audio codes sit at the real ids (text 0..255, ``<|endoftext|>``
151643, ``<|EOT|>`` 151665, ``<|BOT|>`` 151666, ``<audio_start>`` 151688 ... ``<tts_pad>`` 151695, ``<audio_k>``
151696 + k). The vocabulary stays the real 158720 so every id is embeddable; at hidden size 16 the two
embedding matrices are 2 x 2.5 M values, small enough to write per test module.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

TEXT_CONFIG = dict(hidden_size=16, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                   num_attention_groups=2, num_key_value_heads=2, vocab_size=158720, max_seq_len=512,
                   max_position_embeddings=512, rope_theta=1e6, rope_scaling=None, rms_norm_eps=1e-6,
                   eos_token_id=151643, pad_token_id=151643, torch_dtype="bfloat16")
AUDIO_CONFIG = dict(n_mels=128, n_audio_ctx=100, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
                    n_codebook_size=4096, llm_dim=16, kernel_size=3, adapter_stride=2)
ADAPTER_HIDDEN = 2048                      # fixed in the released code, not in config.json
SPECIAL_IDS = {"<|endoftext|>": 151643, "<|EOT|>": 151665, "<|BOT|>": 151666, "<audio_start>": 151688,
               "<audio_end>": 151689, "<audio_patch>": 151690, "<audio_patch_pad>": 151691, "<|SC|>": 151692,
               "<tts_start>": 151693, "<tts_end>": 151694, "<tts_pad>": 151695}
AUDIO_OFFSET, NUM_AUDIO_TOKENS = 151696, 6562   # <audio_0> ... <audio_6561> (6561 = audio pad / eos)


def released_shapes(text: dict = TEXT_CONFIG, audio: dict = AUDIO_CONFIG) -> dict[str, tuple[int, ...]]:
    """Every released tensor name and its shape for the given configs (STEP_AUDIO2_FACTS.md table)."""
    d, f, V = text["hidden_size"], text["intermediate_size"], text["vocab_size"]
    kv = text["num_key_value_heads"] * d // text["num_attention_heads"]
    s, m, ctx = audio["n_audio_state"], audio["n_mels"], audio["n_audio_ctx"]
    shapes = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,), "lm_head.weight": (V, d)}
    for i in range(text["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (d, d), p + "self_attn.q_proj.bias": (d,),
                       p + "self_attn.k_proj.weight": (kv, d), p + "self_attn.k_proj.bias": (kv,),
                       p + "self_attn.v_proj.weight": (kv, d), p + "self_attn.v_proj.bias": (kv,),
                       p + "self_attn.o_proj.weight": (d, d), p + "mlp.gate_proj.weight": (f, d),
                       p + "mlp.up_proj.weight": (f, d), p + "mlp.down_proj.weight": (d, f),
                       p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,)})
    shapes.update({"encoder.conv1.weight": (s, m, 3), "encoder.conv1.bias": (s,), "encoder.conv2.weight": (s, s, 3),
                   "encoder.conv2.bias": (s,), "encoder.positional_embedding.weight": (ctx, s),
                   "encoder.after_norm.weight": (s,), "encoder.after_norm.bias": (s,)})
    for i in range(audio["n_audio_layer"]):
        p = f"encoder.blocks.{i}."
        for name in ("query", "value", "out"):
            shapes.update({p + f"attn.{name}.weight": (s, s), p + f"attn.{name}.bias": (s,)})
        shapes[p + "attn.key.weight"] = (s, s)
        for ln in ("attn_ln", "mlp_ln"):
            shapes.update({p + f"{ln}.weight": (s,), p + f"{ln}.bias": (s,)})
        shapes.update({p + "mlp.0.weight": (4 * s, s), p + "mlp.0.bias": (4 * s,),
                       p + "mlp.2.weight": (s, 4 * s), p + "mlp.2.bias": (s,)})
    k = audio["kernel_size"]
    shapes.update({"adapter.conv.weight": (s, s, k), "adapter.conv.bias": (s,),
                   "adapter.linear1.weight": (ADAPTER_HIDDEN, s), "adapter.linear1.bias": (ADAPTER_HIDDEN,),
                   "adapter.linear2.weight": (audio["llm_dim"], ADAPTER_HIDDEN),
                   "adapter.linear2.bias": (audio["llm_dim"],)})
    return shapes


def tiny_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random bf16 weights under the released names; norms near 1, small biases, 1/sqrt(fan_in) weights."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in released_shapes().items():
        if name.endswith("norm.weight") or "_ln.weight" in name or "layernorm" in name:
            t = 1 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            t = 0.05 * torch.randn(shape, generator=g)
        else:
            fan_in = shape[1] * (shape[2] if len(shape) == 3 else 1)
            scale = 1.0 if "embed" in name or "positional" in name else fan_in ** -0.5
            t = scale * torch.randn(shape, generator=g)
        out[name] = t.to(torch.bfloat16)
    return out


def write_tokenizer(folder: Path) -> Path:
    """Byte-level tokenizer.json with the special tokens and audio codes at the real Step-Audio-2 ids."""
    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    specials = dict(SPECIAL_IDS)
    specials.update({f"<audio_{k}>": AUDIO_OFFSET + k for k in range(NUM_AUDIO_TOKENS)})
    tok = Tokenizer(models.BPE(vocab={**vocab, **specials}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def write_tiny_step_audio2(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny checkpoint folder and return it (:func:`tiny_tensors` with ``seed`` gives its tensors)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["StepAudio2ForCausalLM"], "model_type": "step_audio_2",
              "text_config": TEXT_CONFIG, "audio_encoder_config": AUDIO_CONFIG, "torch_dtype": "bfloat16"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tensors = tiny_tensors(seed)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    first = {k: v for k, v in tensors.items() if k.startswith("model.")}
    second = {k: v for k, v in tensors.items() if not k.startswith("model.")}
    weight_map = {}
    for name, shard in zip(names, (first, second)):
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    write_tokenizer(folder)
    return folder




def write_tokenizer_config(folder: str | Path, ids: dict[str, int] | None = None) -> Path:
    """A ``tokenizer_config.json`` whose ``added_tokens_decoder`` lists the special tokens (``ids`` overrides
    some of :data:`SPECIAL_IDS`, e.g. to put one at a wrong id), as a Hugging Face tokenizer folder holds it."""
    specials = {**SPECIAL_IDS, **(ids or {})}
    decoder = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for t, i in specials.items()}
    path = Path(folder) / "tokenizer_config.json"
    path.write_text(json.dumps({"added_tokens_decoder": decoder, "eos_token": "<|EOT|>",
                                "pad_token": "<|endoftext|>", "tokenizer_class": "PreTrainedTokenizerFast"},
                               indent=2))
    return path
