"""The full-size cascade stages on tiny random-weight models saved in the real folder layouts: each adapter loads
from its folder and runs, a missing or incomplete folder gives a clear error, and the whole cascade runs in both
modes (outputs of random weights are junk: structure is checked, not content)."""
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from a2llm.baselines.cascade_full import (ARTalkAnimator, Resampled, TextLLM, VitsTTS, WhisperASR,
                                          build_full_cascade, load_animator)
from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW

NANO = Path("checkpoints/a2llm-nano")
TEMPLATE = ("{% for m in messages %}<|BOT|>{{ m['role'] }}\n{{ m['content'] }}<|EOT|>{% endfor %}"
            "{% if add_generation_prompt %}<|BOT|>assistant\n{% endif %}")


# --- tiny models in the released layouts ----------------------------------------------------------------------
def _save_whisper(folder: Path) -> Path:
    """A 1-layer Whisper with a byte-level tokenizer (256 bytes + Whisper's special tokens), multilingual layout."""
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                "<|notimestamps|>"]
    for s in specials:
        vocab[s] = len(vocab)
    tok = WhisperTokenizer(vocab=dict(vocab), merges=[])
    tok.add_special_tokens({"additional_special_tokens": specials[1:]})
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tok).save_pretrained(folder)
    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    cfg = WhisperConfig(vocab_size=len(vocab), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_source_positions=1500, max_target_positions=64, pad_token_id=eot, bos_token_id=eot,
                        eos_token_id=eot, decoder_start_token_id=sot)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot, is_multilingual=True,
        lang_to_id={"<|en|>": vocab["<|en|>"]}, no_timestamps_token_id=vocab["<|notimestamps|>"],
        task_to_id={"transcribe": vocab["<|transcribe|>"], "translate": vocab["<|translate|>"]})
    model.save_pretrained(folder)
    return folder


def _save_llm(folder: Path, chat_template: str | None) -> Path:
    """A 1-layer Qwen2 over the nano text tokenizer (with ``chat_template`` when given)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from a2llm.model import load_checkpoint_tokenizer

    tok = load_checkpoint_tokenizer(NANO)
    tok.chat_template = chat_template
    tok.save_pretrained(folder)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    return folder


def _save_vits(folder: Path) -> Path:
    """A tiny VITS with a character tokenizer (lower-case printable ASCII), mms-tts layout, 16 kHz."""
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = ["<pad>", "<unk>"] + [chr(c) for c in range(32, 127) if not chr(c).isupper()]
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(chars)}))
    VitsTokenizer(str(folder / "vocab.json"), phonemize=False).save_pretrained(folder)
    cfg = VitsConfig(vocab_size=len(chars), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32,
                     flow_size=16, spectrogram_bins=33, upsample_initial_channel=16, resblock_kernel_sizes=[3],
                     resblock_dilation_sizes=[[1]], duration_predictor_filter_channels=16,
                     duration_predictor_num_flows=1, prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1,
                     posterior_encoder_num_wavenet_layers=1, sampling_rate=16000)
    torch.manual_seed(0)
    VitsModel(cfg).save_pretrained(folder)
    return folder


_FAKE_ARTALK = '''
import math
import torch
from torch import nn


class BitwiseARModel(nn.Module):
    """Stand-in with ARTalk's interface: frame t of column c is (t + 1) * (c + 1) / 1000 (linear in time)."""

    def __init__(self, model_cfg):
        super().__init__()
        assert model_cfg["AR_CONFIG"]["AUDIO_ENCODER"] == "wav2vec"
        self.scale = nn.Parameter(torch.zeros(1))

    @torch.no_grad()
    def inference(self, batch, with_gtmotion=False):
        assert batch["audio"].dim() == 2 and batch["style_motion"] is None and not with_gtmotion
        T = math.ceil(batch["audio"].shape[-1] / 16000 * 25.0)
        t = torch.arange(1, T + 1, dtype=torch.float32)[:, None]
        return ((t * torch.arange(1, 107) / 1000.0) + self.scale)[None]
'''


def _save_artalk(folder: Path) -> Path:
    """A checkout in ARTalk's layout (app package with relative imports, assets/) whose model is a stand-in."""
    (folder / "app").mkdir(parents=True)
    (folder / "assets").mkdir()
    (folder / "app/__init__.py").write_text("from .models import BitwiseARModel\n")
    (folder / "app/models.py").write_text(textwrap.dedent(_FAKE_ARTALK))
    (folder / "assets/config.json").write_text(json.dumps({"AR_CONFIG": {"AUDIO_ENCODER": "mimi"}}))
    torch.save({"scale": torch.zeros(1)}, folder / ARTalkAnimator.WEIGHTS)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    return {"whisper": _save_whisper(root / "whisper"), "llm": _save_llm(root / "llm", None),
            "chat": _save_llm(root / "chat", TEMPLATE), "vits": _save_vits(root / "vits"),
            "artalk": _save_artalk(root / "ARTalk")}


# --- clear errors -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, what, repo", [
    (WhisperASR, "Whisper weights", "openai/whisper-large-v3"),
    (TextLLM, "LLM weights", "Qwen/Qwen2.5-7B-Instruct"),
    (VitsTTS, "VITS TTS weights", "facebook/mms-tts-eng"),
    (ARTalkAnimator, "ARTalk", "xg-chu/ARTalk"),
])
def test_a_missing_folder_says_what_and_how_to_get_it(tmp_path, cls, what, repo):
    folder = tmp_path / "absent"
    with pytest.raises(FileNotFoundError, match=f"{what} not found at {folder}: .*{repo}.*{folder}"):
        cls(folder)


def test_an_incomplete_folder_names_the_missing_parts(tmp_path, folders):
    (tmp_path / "config.json").write_text(json.dumps(json.loads((folders["whisper"] / "config.json").read_text())))
    with pytest.raises(FileNotFoundError, match=r"incomplete, missing: weights \(model.safetensors or .*\); "
                                                r"tokenizer .*; feature extractor .*openai/whisper-large-v3"):
        WhisperASR(tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app/models.py").write_text("")
    with pytest.raises(FileNotFoundError, match=r"ARTalk at .* missing: weights \(assets/ARTalk_wav2vec.pt\)"):
        ARTalkAnimator(tmp_path)


def test_load_animator_refuses_a_folder_that_is_neither_avatar(tmp_path):
    with pytest.raises(FileNotFoundError, match="no audio-driven animator .*a2llm.json.*ARTalk"):
        load_animator(tmp_path)


# --- each adapter -----------------------------------------------------------------------------------------------
def test_whisper_transcribes_at_any_rate_within_its_window(folders):
    asr = WhisperASR(folders["whisper"], max_new_tokens=8)
    assert asr.prompt == {"language": "en", "task": "transcribe"}
    rng = np.random.default_rng(0)
    for sr in (16000, 24000):
        assert isinstance(asr.transcribe(0.1 * rng.standard_normal(sr).astype(np.float32), sr), str)
    with pytest.raises(ValueError, match="30 s window"):
        asr.transcribe(np.zeros(31 * 16000, np.float32), 16000)


@pytest.mark.parametrize("name", ["llm", "chat"])
def test_text_llm_streams_the_greedy_answer(folders, name):
    llm = TextLLM(folders[name], system_prompt="Be brief.", max_new_tokens=12)
    # nano's Metaspace BPE is loaded as saved, though the folder's model type is qwen2
    assert llm.tok.decode(llm.tok.encode("who is there", add_special_tokens=False)) == "who is there"
    prompt = llm.prompt("hello there")
    if name == "chat":
        assert prompt.startswith("<|BOT|>system\nBe brief.<|EOT|><|BOT|>user\nhello there<|EOT|>")
    else:
        assert prompt == "Be brief.\n\nUser: hello there\nAssistant:"
    pieces = list(llm.stream("hello there"))
    assert all(isinstance(p, str) and p for p in pieces)
    # the KV-cache loop gives what transformers' own greedy generate gives
    ids = llm.tok(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    ref = llm.model.generate(ids, do_sample=False, max_new_tokens=12, eos_token_id=sorted(llm.stop_ids),
                             pad_token_id=llm.tok.pad_token_id)[0, ids.shape[1]:]
    assert "".join(pieces) == llm.tok.decode(ref.tolist(), skip_special_tokens=True)


def test_vits_speaks_one_deterministic_piece_per_phrase(folders):
    tts = VitsTTS(folders["vits"])
    assert tts.sample_rate == 16000
    tts.start()
    state = torch.random.get_rng_state()
    first = list(tts.speak("Hello there, my friend."))
    assert torch.equal(state, torch.random.get_rng_state())           # the caller's random state is kept
    assert len(first) == 1 and first[0].tokens == 1 and first[0].sample_rate == 16000
    pcm = first[0].pcm
    assert pcm.dtype == np.float32 and pcm.ndim == 1 and len(pcm) > 0 and np.isfinite(pcm).all()
    np.testing.assert_array_equal(next(tts.speak("Hello there, my friend.")).pcm, pcm)
    assert list(tts.speak("   ")) == [] and list(tts.finish()) == []


def test_artalk_checkout_animates_through_its_interface(folders):
    project_app = sys.modules.get("app")
    anim = load_animator(folders["artalk"])
    assert isinstance(anim, ARTalkAnimator)                             # it resamples itself: no wrapper
    assert sys.modules.get("app") is project_app                      # ARTalk's `app` did not shadow ours
    motion = anim.animate(np.zeros(24000 + 700, np.float32), 24000)     # 1.03 s at 24 kHz
    assert motion.shape == (26, 58) and motion.dtype == np.float32
    t = np.arange(1, 27)[:, None] / 1000.0
    # linear motion survives ARTalk's smoothing; columns map expression / global rotation / jaw (opening only)
    np.testing.assert_allclose(motion[:, EXPR], t * np.arange(1, 51), atol=1e-5)
    np.testing.assert_allclose(motion[:, GLOBAL], t * np.arange(101, 104), atol=1e-5)
    np.testing.assert_allclose(motion[:, JAW], np.c_[t[:, 0] * 104, np.zeros((26, 2))], atol=1e-5)
    assert not motion[:, EYELIDS].any()


# --- the whole cascade ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cascade(folders):
    """One cascade for both modes (built once: loading the nano avatar is the slow part)."""
    return build_full_cascade(folders["whisper"], folders["llm"], folders["vits"], NANO, device="cpu",
                              max_new_tokens=12, phrase_words=3)


@pytest.mark.parametrize("mode", ["batch", "streaming"])
def test_full_cascade_runs_in_both_modes(cascade, mode):
    r = cascade.run(0.1 * np.random.default_rng(1).standard_normal(16000).astype(np.float32), 16000, mode)
    assert isinstance(r.transcript, str) and r.text
    assert r.sample_rate == 16000 and len(r.speech) > 0
    assert r.motion.shape == (round(25 * r.speech_s), 58) and np.isfinite(r.motion).all()
    assert r.ttft_ms <= r.ttfa_ms <= r.wall_ms
    assert r.stages["llm"] > 0 and r.stages["tts"] > 0 and r.stages["animation"] > 0
