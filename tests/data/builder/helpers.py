"""Fixtures for the builder tests: media files, seeded stage results and tiny randomly-initialised models.

The tiny models are real transformers classes with real processors/tokenizers, saved to a folder and loaded
back through the builder's ``from_pretrained`` adapters, so the adapter code runs end to end without any
download.
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from a2llm.data.builder.manifest import Manifest, StageResult
from a2llm.data.builder.media import ffmpeg_exe

RAVDESS_LABELS = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]


# --------------------------------------------------------------------------- media


def make_wav(path: Path, seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> Path:
    """A sine tone with a little noise (not silent, not clipped)."""
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), rate)
    return path


def make_video(path: Path, frames: int = 10, fps: int = 25, size: int = 32, audio_s: float | None = None) -> Path:
    """An H.264 video whose frame i is uniformly grey at level 20 * i (+ a sine audio track if audio_s)."""
    levels = np.arange(frames) * 20 % 256
    video = np.stack([np.full((size, size, 3), lv, np.uint8) for lv in levels])
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}",
           "-r", str(fps), "-i", "-"]
    if audio_s is not None:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=300:duration={audio_s}:sample_rate=16000"]
    cmd += ["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p"]  # near-lossless: levels within 2/255
    if audio_s is not None:
        cmd += ["-c:a", "aac", "-shortest"]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd + [str(path)], input=video.tobytes(), check=True, capture_output=True)
    return path


# --------------------------------------------------------------------------- manifest state


def seed(manifest: Manifest, stage: str, outputs: Mapping[str, Mapping[str, Any]], status: str = "done") -> None:
    """Write results for ``stage`` as if it had run: item id -> output."""
    with manifest.open_log(stage) as log:
        for item, output in outputs.items():
            log.append(StageResult(id=item, stage=stage, status=status, output=dict(output), time=1.0))


# --------------------------------------------------------------------------- tiny models


def _byte_vocab() -> dict[str, int]:
    from tokenizers import pre_tokenizers

    return {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}


WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                    "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def tiny_whisper(folder: Path, *, constant_token: str | None = None, seed: int = 0) -> Path:
    """Save a 1-layer Whisper (d_model 16) with a byte-level tokenizer to ``folder``.

    Args:
        constant_token: if given, the decoder's final layer norm is set to output that token's embedding
            (scaled) at every step, so greedy decoding repeats it: a deterministic transcript.
    """
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)

    tok = WhisperTokenizer(vocab=_byte_vocab(), merges=[])
    tok.add_special_tokens({"additional_special_tokens": WHISPER_SPECIALS[1:]})
    ids = dict(zip(WHISPER_SPECIALS, tok.convert_tokens_to_ids(WHISPER_SPECIALS)))
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500, max_target_positions=64,
                           pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot, max_length=64,
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=True, lang_to_id={"<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]})
    if constant_token is not None:
        emb = model.model.decoder.embed_tokens.weight  # tied to the output projection
        with torch.no_grad():
            norm = model.model.decoder.layer_norm
            norm.weight.zero_()
            target = emb[tok.convert_tokens_to_ids(constant_token)]
            norm.bias.copy_(target * (400.0 / target.dot(target)))  # its logit 400, the others ~N(0, 100)
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok).save_pretrained(folder)
    return folder


def tiny_ser(folder: Path, labels: Sequence[str] = RAVDESS_LABELS, favour: str | None = None) -> Path:
    """Save a 1-layer wav2vec2 audio classifier (hidden 16) with ``labels``; ``favour`` gets a +8 logit bias."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, classifier_proj_size=8, vocab_size=4,
                            id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(config).eval()
    if favour is not None:
        with torch.no_grad():
            model.classifier.bias[list(labels).index(favour)] += 8.0
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    return folder


CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_causal_lm(folder: Path) -> Path:
    """Save a 1-layer Qwen2 (hidden 16) with a byte-level tokenizer and a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    backend = Tokenizer(models.BPE(vocab=_byte_vocab(), merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=["<|im_start|>"], chat_template=CHAT_TEMPLATE)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
