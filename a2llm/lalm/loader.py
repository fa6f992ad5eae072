"""Load Step-Audio-2 checkpoints natively (no ``trust_remote_code``), and save nano ones in the same format.

The released Hugging Face folder (stepfun-ai/Step-Audio-2-mini) holds::

    config.json                      {"architectures": ["StepAudio2ForCausalLM"], "model_type": "step_audio_2",
                                      "text_config": {...Qwen2 sizes...}, "audio_encoder_config": {...}, ...}
    model.safetensors.index.json     {"weight_map": {tensor name: shard file}}   (or one model.safetensors)
    model-0000k-of-0000n.safetensors
    tokenizer.json (+ tokenizer_config.json ...)

Tensor names are the module paths of :class:`~a2llm.lalm.backbone.StepAudio2Backbone` (``model.*``,
``lm_head.weight``, ``encoder.*``, ``adapter.*``), so loading is a strict ``load_state_dict`` after the names
and shapes in the files are checked against the model's. Where each fact comes from: docs/STEP_AUDIO2.md.

A²-LLM-nano backbones are saved by :func:`save_step_audio2` in this same layout (plus ``"component":
"backbone"`` and ``adapter_hidden``, which released readers ignore), so one loader serves both scales.

Special ids: two of Step-Audio-2's are inferred from token order, not read in public code (:data:`INFERRED_IDS`).
:func:`check_special_ids` reads the ids straight from the folder's tokenizer files and :func:`load_step_audio2`
logs which ones they confirm; ``python -m a2llm.lalm.loader [FOLDER]`` checks a downloaded folder (tensor names
and shapes, special ids) without reading the weights and prints the confirmed ids.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone
from a2llm.lalm.encoder import EncoderConfig
from a2llm.lalm.text_tokenizer import load_text_tokenizer
from a2llm.lalm.tokens import SPECIAL_TOKENS, STEP_AUDIO2_LAYOUT, TokenLayout

logger = logging.getLogger(__name__)

DEFAULT_FOLDER = Path("checkpoints/Step-Audio-2-mini")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
              "rms_norm_eps")
_AUDIO_KEYS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "llm_dim",
               "kernel_size", "adapter_stride")
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
#: Step-Audio-2 special ids inferred from token order in STEP_AUDIO2_FACTS.md (no public code numbers them; it
#: looks "<|BOT|>" and "<tts_pad>" up by name): confirmed or refuted by the released tokenizer files.
INFERRED_IDS = {"<|BOT|>": STEP_AUDIO2_LAYOUT.bot, "<tts_pad>": STEP_AUDIO2_LAYOUT.tts_pad}
#: Where a tokenizer folder lists its added tokens: file -> its key.
TOKENIZER_FILES = {"tokenizer_config.json": "added_tokens_decoder", "tokenizer.json": "added_tokens"}


def _missing_folder(folder: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found in {folder}: download stepfun-ai/Step-Audio-2-mini from Hugging Face into "
        f"checkpoints/Step-Audio-2-mini/ (e.g. `huggingface-cli download stepfun-ai/Step-Audio-2-mini "
        f"--local-dir checkpoints/Step-Audio-2-mini`), or pass the folder that holds it")


# ------------------------------------------------------------------------------------------------ config
def config_from_json(raw: dict, where: str = "config.json") -> BackboneConfig:
    """The released config.json (dict) -> :class:`BackboneConfig`; unsupported settings raise ValueError."""
    if raw.get("model_type") != "step_audio_2":
        raise ValueError(f"{where}: model_type is {raw.get('model_type')!r}, expected 'step_audio_2'")
    text, audio = raw.get("text_config"), raw.get("audio_encoder_config")
    if not isinstance(text, dict) or not isinstance(audio, dict):
        raise ValueError(f"{where}: needs 'text_config' and 'audio_encoder_config' objects")
    missing = [f"text_config.{k}" for k in _TEXT_KEYS if k not in text]
    missing += [f"audio_encoder_config.{k}" for k in _AUDIO_KEYS if k not in audio]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    kv = text.get("num_key_value_heads", text.get("num_attention_groups"))
    if kv is None or text.get("num_attention_groups", kv) != kv:
        raise ValueError(f"{where}: num_key_value_heads ({text.get('num_key_value_heads')}) and "
                         f"num_attention_groups ({text.get('num_attention_groups')}) must be given and agree")
    if text.get("rope_scaling") is not None:
        raise ValueError(f"{where}: rope_scaling {text['rope_scaling']} is not supported (the release has none)")
    encoder = EncoderConfig(**{k: int(audio[k]) for k in _AUDIO_KEYS},
                            adapter_hidden=int(audio.get("adapter_hidden", EncoderConfig.adapter_hidden)))
    return BackboneConfig(
        hidden_size=text["hidden_size"], intermediate_size=text["intermediate_size"],
        num_hidden_layers=text["num_hidden_layers"], num_attention_heads=text["num_attention_heads"],
        num_key_value_heads=kv, vocab_size=text["vocab_size"],
        max_position_embeddings=text.get("max_position_embeddings", text.get("max_seq_len", 16384)),
        rope_theta=float(text.get("rope_theta", 1e6)), rms_norm_eps=float(text["rms_norm_eps"]),
        tie_word_embeddings=bool(text.get("tie_word_embeddings", raw.get("tie_word_embeddings", False))),
        encoder=encoder)


def config_to_json(config: BackboneConfig, dtype: torch.dtype = torch.float32) -> dict:
    """:class:`BackboneConfig` -> a config.json dict in the released layout."""
    c, e = config, config.encoder
    dtype_name = {v: k for k, v in _DTYPES.items()}[dtype]
    text = dict(hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                num_attention_groups=c.num_key_value_heads, num_key_value_heads=c.num_key_value_heads,
                vocab_size=c.vocab_size, max_seq_len=c.max_position_embeddings,
                max_position_embeddings=c.max_position_embeddings, rope_theta=c.rope_theta, rope_scaling=None,
                rms_norm_eps=c.rms_norm_eps, tie_word_embeddings=c.tie_word_embeddings, torch_dtype=dtype_name)
    audio = dict(n_mels=e.n_mels, n_audio_ctx=e.n_audio_ctx, n_audio_state=e.n_audio_state,
                 n_audio_head=e.n_audio_head, n_audio_layer=e.n_audio_layer, llm_dim=e.llm_dim,
                 kernel_size=e.kernel_size, adapter_stride=e.adapter_stride, adapter_hidden=e.adapter_hidden)
    return {"architectures": ["StepAudio2ForCausalLM"], "model_type": "step_audio_2", "torch_dtype": dtype_name,
            "text_config": text, "audio_encoder_config": audio}


def read_config(folder: str | Path) -> tuple[BackboneConfig, dict]:
    """Read ``folder/config.json``: (config, the raw dict)."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise _missing_folder(Path(folder), "config.json")
    raw = json.loads(path.read_text())
    return config_from_json(raw, str(path)), raw


# ------------------------------------------------------------------------------------------------ weights
def weight_map(folder: str | Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it (from the index, or the single file's header)."""
    folder = Path(folder)
    if (folder / INDEX).exists():
        raw = json.loads((folder / INDEX).read_text())
        if "weight_map" not in raw:
            raise ValueError(f"{folder / INDEX} has no 'weight_map'")
        files = {f: folder / f for f in set(raw["weight_map"].values())}
        absent = sorted(f for f, p in files.items() if not p.exists())
        if absent:
            raise FileNotFoundError(f"{folder}: shards named in {INDEX} are missing: {absent}")
        return {name: files[f] for name, f in raw["weight_map"].items()}
    if (folder / SINGLE).exists():
        with safe_open(str(folder / SINGLE), framework="pt") as f:
            return {name: folder / SINGLE for name in f.keys()}
    raise _missing_folder(folder, f"{INDEX} or {SINGLE}")


def _shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from the safetensors headers (no tensor data is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    by_file: dict[Path, list[str]] = {}
    for name, path in files.items():
        by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        with safe_open(str(path), framework="pt") as f:
            stored = set(f.keys())
            lost = [n for n in names if n not in stored]
            if lost:
                raise ValueError(f"{path.name} lacks tensors the index puts there: {lost[:10]}")
            shapes.update({n: tuple(f.get_slice(n).get_shape()) for n in names})
    return shapes


def _listing(names: list[str], limit: int = 12) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_tensors(model: StepAudio2Backbone, files: dict[str, Path], where: str) -> None:
    """Strict name and shape check of the stored tensors against the model's state_dict.

    Raises:
        ValueError: naming missing, unexpected and mis-shaped tensors.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        expected.pop("lm_head.weight")
        files = {k: v for k, v in files.items() if k != "lm_head.weight"}
    missing, unexpected = set(expected) - set(files), set(files) - set(expected)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listing(list(missing))}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_listing(list(unexpected))}")
    if not problems:
        stored = _shapes(files)
        wrong = [f"{n} {stored[n]} (model {s})" for n, s in expected.items() if stored[n] != s]
        if wrong:
            problems.append(f"{len(wrong)} with wrong shapes: {_listing(wrong)}")
    if problems:
        raise ValueError(f"{where}: tensors do not match the Step-Audio-2 model built from config.json: "
                         + "; ".join(problems))


def check_token_layout(tokenizer, expected: TokenLayout, vocab_size: int) -> TokenLayout:
    """The tokenizer's special-token ids must be ``expected``'s, and the model must embed every audio code.

    Returns:
        The layout read from the tokenizer. Raises ValueError listing every mismatch.
    """
    got = TokenLayout.from_tokenizer(tokenizer, expected.num_audio_codes)
    fields = ("endoftext", "bot", "eot", "audio_start", "audio_end", "audio_patch", "tts_start", "tts_end",
              "tts_pad", "audio_offset")
    wrong = [f"{f}: tokenizer {getattr(got, f)}, expected {getattr(expected, f)}" for f in fields
             if getattr(got, f) != getattr(expected, f)]
    if got.audio_offset + got.num_audio_codes > vocab_size:
        last = got.audio_offset + got.num_audio_codes - 1
        wrong.append(f"audio codes reach id {last} but the model's vocab_size is {vocab_size}")
    if wrong:
        raise ValueError("tokenizer does not have the expected token layout (a2llm.lalm.tokens): " + "; ".join(wrong))
    return got


def layout_token_ids(layout: TokenLayout) -> dict[str, int]:
    """The special tokens of ``layout`` by name (:data:`a2llm.lalm.tokens.SPECIAL_TOKENS`) -> id."""
    ids = {"<|endoftext|>": layout.endoftext, "<|BOT|>": layout.bot, "<|EOT|>": layout.eot,
           "<audio_start>": layout.audio_start, "<audio_end>": layout.audio_end, "<audio_patch>": layout.audio_patch,
           "<tts_start>": layout.tts_start, "<tts_end>": layout.tts_end, "<tts_pad>": layout.tts_pad}
    if set(ids) != set(SPECIAL_TOKENS):
        raise RuntimeError("a2llm.lalm.tokens.SPECIAL_TOKENS changed: name the new tokens' ids here")
    return ids


def tokenizer_file_ids(folder: str | Path) -> dict[str, dict[str, int]]:
    """The token -> id maps that a tokenizer folder's files state, by source.

    Sources: ``"tokenizer_config.json added_tokens_decoder"`` (``{"id": {"content": ...}}``), ``"tokenizer.json
    added_tokens"`` (``[{"id": ..., "content": ...}]``) and ``"tokenizer.json model.vocab"`` (the BPE vocabulary,
    where special tokens may sit instead); absent files and keys are left out.
    """
    folder = Path(folder)
    found: dict[str, dict[str, int]] = {}
    for name, key in TOKENIZER_FILES.items():
        path = folder / name
        if not path.exists():
            continue
        raw = json.loads(path.read_text(encoding="utf-8"))
        if name == "tokenizer_config.json" and isinstance(raw.get(key), dict):
            found[f"{name} {key}"] = {v["content"]: int(i) for i, v in raw[key].items()}
        elif name == "tokenizer.json":
            if isinstance(raw.get(key), list):
                found[f"{name} {key}"] = {t["content"]: int(t["id"]) for t in raw[key]}
            vocab = (raw.get("model") or {}).get("vocab")
            if isinstance(vocab, dict):
                found[f"{name} model.vocab"] = {t: int(i) for t, i in vocab.items()}
    return found


def check_special_ids(folder: str | Path, expected: Mapping[str, int] = INFERRED_IDS) -> dict[str, list[str]]:
    """Check special-token ids against what the folder's tokenizer files state (:func:`tokenizer_file_ids`).

    Every source that lists a token of ``expected`` must give it the expected id, no source may give an expected
    id to another token, and each token must be listed somewhere.

    Returns:
        token -> the sources that confirm its id (never empty).
    Raises:
        FileNotFoundError: neither tokenizer.json nor tokenizer_config.json is in ``folder``.
        ValueError: listing every mismatch, with the file that states it.
    """
    folder = Path(folder)
    sources = tokenizer_file_ids(folder)
    if not sources:
        raise _missing_folder(folder, " or ".join(TOKENIZER_FILES))
    confirmed: dict[str, list[str]] = {t: [] for t in expected}
    wrong: list[tuple[str, str]] = []          # (token, what is wrong)
    for source, ids in sources.items():
        by_id = {i: t for t, i in ids.items()}
        for token, want in expected.items():
            got = ids.get(token)
            if got is not None and got != want:
                wrong.append((token, f"{source} gives {token} id {got}, expected {want}"))
            elif got == want:
                confirmed[token].append(source)
            holder = by_id.get(want)
            if holder is not None and holder != token and holder not in expected:
                wrong.append((token, f"{source} gives id {want} (expected {token}) to {holder!r}"))
    wrong += [(token, f"{token} is in none of {sorted(sources)}") for token, srcs in confirmed.items()
              if not srcs and not any(token in ids for ids in sources.values())]
    if wrong:
        inferred = sorted({t for t, _ in wrong if INFERRED_IDS.get(t) == expected[t]})
        note = (f" ({', '.join(inferred)}: id inferred from token order in STEP_AUDIO2_FACTS.md; where the released "
                "files differ they win: update a2llm.lalm.tokens.STEP_AUDIO2_LAYOUT)") if inferred else ""
        raise ValueError(f"{folder}: tokenizer files disagree with the expected special ids: "
                         + "; ".join(w for _, w in wrong) + note)
    return confirmed


def describe_confirmed(confirmed: Mapping[str, list[str]], expected: Mapping[str, int]) -> str:
    """One line naming the ids :func:`check_special_ids` confirmed, the inferred ones first."""
    order = sorted(confirmed, key=lambda t: (t not in INFERRED_IDS, expected[t]))
    parts = [f"{t}={expected[t]}{' (inferred)' if INFERRED_IDS.get(t) == expected[t] else ''} "
             f"[{', '.join(dict.fromkeys(s.split(' ')[0] for s in confirmed[t]))}]" for t in order]
    return "special ids confirmed by the tokenizer files: " + ", ".join(parts)


def load_step_audio2(folder: str | Path = DEFAULT_FOLDER, dtype: torch.dtype | None = None,
                     device: str | torch.device = "cpu", expected_layout: TokenLayout | None = STEP_AUDIO2_LAYOUT,
                     attn_implementation: str = "sdpa"):
    """Build a :class:`StepAudio2Backbone` from a Step-Audio-2 folder and load its weights and tokenizer.

    Args:
        folder: the Hugging Face folder as downloaded (or a nano backbone saved by :func:`save_step_audio2`).
        dtype: parameter dtype; default the folder's ``torch_dtype`` (bfloat16 for the release).
        device: "meta" builds the model and checks every tensor name and shape against the files without
            reading weights; any other device loads them there.
        expected_layout: special-token ids the tokenizer must have, checked in the tokenizer files
            (:func:`check_special_ids`, the confirmed ids are logged at INFO) and in the loaded tokenizer;
            None skips both.
        attn_implementation: decoder attention backend.

    Returns:
        (backbone in eval mode, tokenizer).

    Raises:
        FileNotFoundError: no such folder / config / weights / tokenizer.
        ValueError: unsupported config, tensors that do not match, or a tokenizer with other special ids.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing_folder(folder, "the checkpoint folder")
    config, raw = read_config(folder)
    stored = raw.get("torch_dtype", raw["text_config"].get("torch_dtype", "float32"))
    if dtype is None:
        dtype = _DTYPES.get(stored, torch.float32)
    device = torch.device(device)
    with torch.device("meta"):
        model = StepAudio2Backbone(config, attn_implementation=attn_implementation)
    files = weight_map(folder)
    check_tensors(model, files, str(folder))
    if not (folder / "tokenizer.json").exists():
        raise _missing_folder(folder, "tokenizer.json")
    if expected_layout is not None:
        # the files first: their error names the file and the id; then the loaded tokenizer and the vocab size
        expected = layout_token_ids(expected_layout)
        logger.info("%s: %s", folder, describe_confirmed(check_special_ids(folder, expected), expected))
    tokenizer = load_text_tokenizer(folder)
    if expected_layout is not None:
        check_token_layout(tokenizer, expected_layout, config.vocab_size)
    if device.type == "meta":
        return model.to(dtype).eval(), tokenizer
    state = {}
    for path in sorted(set(files.values())):
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                if name in files and files[name] == path:
                    state[name] = f.get_tensor(name).to(device=device, dtype=dtype)
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.rebuild_buffers(device)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"tensors left on the meta device after loading: {_listing(left)}")
    return model.eval(), tokenizer


def save_step_audio2(model: StepAudio2Backbone, folder: str | Path, tokenizer=None,
                     max_shard_bytes: int | None = None) -> Path:
    """Write ``model`` (and ``tokenizer``) as a Step-Audio-2 folder that :func:`load_step_audio2` reads.

    Args:
        model: the backbone; weights are saved in their current dtype.
        folder: output folder (created).
        tokenizer: a Hugging Face tokenizer saved alongside, or None.
        max_shard_bytes: split the weights into shards of about this size with an index, or one file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight")          # safetensors stores no aliases; the loader re-ties
    dtype = model.model.embed_tokens.weight.dtype
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if max_shard_bytes is not None and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    names = [SINGLE] if len(shards) == 1 else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                                               for i in range(len(shards))]
    for name, shard in zip(names, shards):
        _atomic(folder / name, lambda p, s=shard: save_file(s, p, metadata={"format": "pt"}))
    stale = folder / (INDEX if len(shards) == 1 else SINGLE)
    if stale.exists():
        stale.unlink()
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": {k: n for n, s in zip(names, shards) for k in s}}
        _atomic(folder / INDEX, lambda p: Path(p).write_text(json.dumps(index, indent=2)))
    config = {"component": "backbone", **config_to_json(model.config, dtype)}
    _atomic(folder / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return folder


def _atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename (no half-written checkpoints)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str] | None = None) -> dict[str, list[str]]:
    """``python -m a2llm.lalm.loader [FOLDER]``: check a Step-Audio-2 folder without reading its weights (config,
    every tensor name and shape, special ids in the tokenizer files and the tokenizer) and print what it
    confirmed. Returns token -> confirming sources."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    args = parser.parse_args(argv)
    model, _ = load_step_audio2(args.folder, device="meta")
    expected = layout_token_ids(STEP_AUDIO2_LAYOUT)
    confirmed = check_special_ids(args.folder, expected)
    print(f"{args.folder}: config and {len(model.state_dict())} tensor names/shapes match the Step-Audio-2 model")
    print(describe_confirmed(confirmed, expected))
    return confirmed


if __name__ == "__main__":
    main()
