"""Detokenizers: the streaming contract on nano token2wav, Griffin-Lim, checkpoints, training, CosyVoice adapter."""
import dataclasses
import io
import json
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from a2llm.checkpoint import update_manifest
from a2llm.data import FlameQASample, FlameQAWriter
from a2llm.data.phones import PHONES
from a2llm.lalm import cosyvoice
from a2llm.lalm.cosyvoice import REQUIRED_FILES, CosyVoiceToken2Wav
from a2llm.lalm.detokenizer import Detokenizer, load_detokenizer, register_detokenizer
from a2llm.lalm.nano_token2wav import (NanoToken2Wav, NanoToken2WavConfig, StreamingGriffinLim, Token2Mel,
                                       griffin_lim, stft_frames)
from a2llm.train.token2wav import TrainConfig, train_token2wav

TINY = NanoToken2WavConfig(channels=32, n_fft=512, win_length=512, n_mels=40, gl_iters=8)
SPT = 640   # samples per token at 16 kHz / 25 Hz


@pytest.fixture(scope="module")
def detok() -> NanoToken2Wav:
    torch.manual_seed(0)
    return NanoToken2Wav(Token2Mel(TINY))


def tokens(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(PHONES), n)


# --- the streaming contract -------------------------------------------------------------------------------------
def test_interface_constants(detok):
    assert isinstance(detok, Detokenizer)
    assert (detok.sample_rate, detok.token_rate, detok.chunk_tokens, detok.lookahead_tokens) == (16000, 25, 25, 3)
    assert detok.samples_per_token == SPT and detok.num_tokens == len(PHONES)
    assert NanoToken2WavConfig().receptive_field == 3 and TINY.receptive_field == 3


@pytest.mark.parametrize("n", [0, 1, 24, 28, 53, 77])
def test_duration_is_tokens_over_25_seconds(detok, n):
    pcm = detok.decode(tokens(n))
    assert pcm.shape == (n * SPT,) and pcm.dtype == np.float32 and np.isfinite(pcm).all()


def test_chunk_schedule_and_flush(detok):
    s = detok.stream()
    assert detok.chunk_schedule == (10, 15) and detok.chunk_tokens == 25
    assert s.push(tokens(12)) == []                         # the short first chunk: 10 + 3 lookahead not yet there
    chunks = s.push(tokens(1, seed=1))                      # 13th token: one chunk of 10 tokens
    assert [len(c) for c in chunks] == [10 * SPT] and s.samples_emitted == 10 * SPT and s.tokens_decoded == 10
    assert s.push(tokens(14, seed=2)) == []                 # 27 pushed, 17 undecoded
    assert [len(c) for c in s.push(tokens(1, seed=3))] == [15 * SPT]   # the second chunk: 15
    assert s.push(tokens(24, seed=6)) == []                 # 52 pushed, 27 undecoded
    assert [len(c) for c in s.push(tokens(1, seed=7))] == [25 * SPT]   # then chunks of 25
    assert s.seconds_emitted == 2.0
    rest = s.flush()                                        # tokens 50..52 without lookahead
    assert rest.shape == (3 * SPT,) and rest.dtype == np.float32
    assert s.tokens_pushed == 0 and s.samples_emitted == 0  # flush ends the utterance
    assert len(s.flush()) == 0


@pytest.mark.parametrize("piece", [1, 7, 28, 100])
def test_streaming_equals_whole_decode(detok, piece):
    toks = tokens(103, seed=4)
    whole = detok.decode(toks)
    with detok.stream() as s:
        parts = [c for i in range(0, len(toks), piece) for c in s.push(toks[i:i + piece])]
        parts.append(s.flush())
    assert [len(p) // SPT for p in parts] == [10, 15, 25, 25, 25, 3]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4)


def test_chunks_get_the_whole_utterances_mel(detok):
    """What the stream hands Griffin-Lim for each chunk (left context + chunk + 3 lookahead through the network)
    is exactly the whole utterance's spectrum for that chunk."""
    toks = tokens(90, seed=5)
    whole = detok.mel_to_magnitude(detok.mel(toks))
    fed = []
    s = detok.stream()
    step = s.gl.step
    s.gl.step = lambda mag, ahead=None: (fed.append(mag), step(mag, ahead))[1]
    s.push(toks)
    s.flush()
    assert [m.shape[1] for m in fed] == [40, 60, 100, 100, 60]           # 10, 15, 25, 25 tokens, then the rest
    torch.testing.assert_close(torch.cat(fed, 1), whole, atol=1e-5, rtol=1e-4)
    fpt = TINY.frames_per_token
    whole = detok.mel(toks)
    # the lookahead is needed: the 3rd token after a chunk changes its last frames, the 4th does not
    changed = toks.copy()
    changed[27] = (changed[27] + 1) % len(PHONES)
    assert (detok.mel(changed)[:, :25 * fpt] - whole[:, :25 * fpt]).abs().max() > 1e-4
    changed = toks.copy()
    changed[28] = (changed[28] + 1) % len(PHONES)
    torch.testing.assert_close(detok.mel(changed)[:, :25 * fpt], whole[:, :25 * fpt], atol=1e-6, rtol=0)


def test_reset_and_context_manager_forget_the_utterance(detok):
    a, b = tokens(60, seed=6), tokens(60, seed=7)
    s = detok.stream()
    s.push(a[:40])
    s.reset()
    parts = s.push(b) + [s.flush()]
    np.testing.assert_allclose(np.concatenate(parts), detok.decode(b), atol=1e-4)
    with detok.stream() as s2:
        s2.push(a[:30])
    assert s2.tokens_pushed == 0 and s2.samples_emitted == 0


def test_bad_tokens_are_refused(detok):
    with pytest.raises(ValueError, match=r"out of range.*\[0, 52\)"):
        detok.decode([1, 2, 52])
    with pytest.raises(ValueError, match="1-D"):
        detok.decode(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="integers"):
        detok.stream().push([0.5, 1.0])


def test_config_refuses_a_network_that_sees_past_the_lookahead():
    with pytest.raises(ValueError, match="lookahead"):
        NanoToken2WavConfig(token_layers=3)
    with pytest.raises(ValueError, match="hop"):
        NanoToken2WavConfig(hop_length=300)


# --- spectral parts ---------------------------------------------------------------------------------------------
def test_griffin_lim_recovers_a_sine(detok):
    t = np.arange(16000) / 16000
    x = torch.from_numpy((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    mag = stft_frames(x, TINY, detok.window).abs()
    gen = torch.Generator().manual_seed(0)
    y, _ = griffin_lim(mag, TINY, detok.window, n_iter=64, momentum=0.99, generator=gen)
    err = float((stft_frames(y, TINY, detok.window).abs() - mag).norm() / mag.norm())
    start, _ = griffin_lim(mag, TINY, detok.window, n_iter=0, momentum=0.99, generator=gen)
    err0 = float((stft_frames(start, TINY, detok.window).abs() - mag).norm() / mag.norm())
    assert y.shape == x.shape and err < 0.08 < err0
    assert abs(np.argmax(np.abs(np.fft.rfft(y.numpy()))) - 440) <= 1     # 1 Hz bins over 1 s


def test_streaming_griffin_lim_joins_chunks_without_clicks(detok):
    """A gliding harmonic tone through chunked GL: as consistent as one global GL, and no worse at the joins."""
    t = np.arange(100 * SPT) / 16000
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 0.7 * t)) / 16000
    x = torch.from_numpy((0.2 * sum(np.sin(k * phase) / k for k in range(1, 12))).astype(np.float32))
    cfg = NanoToken2WavConfig(n_fft=512, win_length=512, gl_iters=32)
    mag = stft_frames(x, cfg, detok.window).abs()
    gl, outs, c = StreamingGriffinLim(cfg, detok.window), [], 100
    for i in range(0, 300, c):
        outs.append(gl.step(mag[:, i:i + c], mag[:, i + c:i + c + 12]))
    outs.append(gl.step(mag[:, 300:]))
    y = torch.cat(outs)
    assert y.shape == x.shape
    err = (stft_frames(y, cfg, detok.window).abs() - mag).norm(dim=0) / mag.norm(dim=0)
    joins = torch.cat([err[k - 2:k + 2] for k in (100, 200, 300)])
    g, _ = griffin_lim(mag, cfg, detok.window, n_iter=32, momentum=0.99, generator=torch.Generator().manual_seed(0))
    global_err = float((stft_frames(g, cfg, detok.window).abs() - mag).norm() / mag.norm())
    assert float((stft_frames(y, cfg, detok.window).abs() - mag).norm() / mag.norm()) < global_err + 0.02
    assert float(joins.mean()) < 1.5 * float(err[20:-20].mean()) + 0.02
    jumps = np.abs(np.diff(y.numpy()))
    assert max(jumps[k * 160 - 1] for k in (100, 200, 300)) < np.percentile(jumps, 99.5)


def test_mel_inverse_is_non_negative_and_consistent(detok):
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, 20 * SPT).astype(np.float32))
    lm = detok.log_mel(x)
    assert lm.shape == (TINY.n_mels, 20 * TINY.frames_per_token)
    mag = detok.mel_to_magnitude(lm)
    assert mag.shape == (TINY.n_freq, lm.shape[1]) and (mag >= 0).all()
    back = torch.log((detok.mel_basis @ mag).clamp_min(TINY.log_floor))
    assert float((back - lm).abs().mean()) < 0.05
    with pytest.raises(ValueError, match="whole number of tokens"):
        detok.log_mel(x[:-1])


# --- checkpoints and registry -----------------------------------------------------------------------------------
def test_save_load_round_trip_directly_via_manifest_and_registry(detok, tmp_path):
    detok.save_pretrained(tmp_path / "ckpt" / "token2wav")
    assert json.loads((tmp_path / "ckpt" / "token2wav" / "config.json").read_text())["component"] == "token2wav"
    toks = tokens(40, seed=8)
    ref = detok.decode(toks)
    again = NanoToken2Wav.from_pretrained(tmp_path / "ckpt" / "token2wav")
    assert again.config == TINY
    np.testing.assert_array_equal(again.decode(toks), ref)
    update_manifest(tmp_path / "ckpt", "detokenizer", "token2wav")
    for spec in (tmp_path / "ckpt", str(tmp_path / "ckpt" / "token2wav"), f"nano:{tmp_path / 'ckpt'}"):
        loaded = load_detokenizer(spec)
        assert isinstance(loaded, NanoToken2Wav)
        np.testing.assert_array_equal(loaded.decode(toks), ref)
    with pytest.raises(FileNotFoundError, match="neither a registered"):
        load_detokenizer(tmp_path / "nowhere")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"component": "rvq"}))
    with pytest.raises(ValueError, match="not a detokenizer"):
        load_detokenizer(tmp_path / "other")


def test_registry_names(detok):
    register_detokenizer("tiny-test", lambda arg: detok)
    assert load_detokenizer("tiny-test") is detok
    random = load_detokenizer("nano:random")
    assert isinstance(random, NanoToken2Wav) and random.config == NanoToken2WavConfig()
    with pytest.raises(ValueError):
        register_detokenizer("bad:name", lambda arg: detok)


# --- training ---------------------------------------------------------------------------------------------------
def synthetic_corpus(root, n_train: int = 6, n_val: int = 2):
    """Each token class k sounds as a sine at 150 + 60 k Hz; class 0 is silence."""
    rng = np.random.default_rng(0)
    with FlameQAWriter(root, name="t2w-test") as w:
        for i in range(n_train + n_val):
            toks = np.repeat(rng.integers(0, 6, 8), rng.integers(3, 7, 8))[:40]
            t = np.arange(SPT) / 16000
            audio = np.concatenate([0.3 * np.sin(2 * np.pi * (150 + 60 * k) * t) * (k > 0) for k in toks])
            w.add(FlameQASample(id=f"s{i}", question_text="q?", question_audio=np.zeros(1600, np.float32),
                                response_text="a.", response_audio=audio.astype(np.float32), sample_rate=16000,
                                motion=np.zeros((len(toks), 58), np.float32), emotion="neutral",
                                audio_tokens=toks, split="train" if i < n_train else "val"))


def test_training_loss_falls_resumes_and_saves(tmp_path):
    synthetic_corpus(tmp_path / "data")
    out = tmp_path / "out"
    cfg = TrainConfig(epochs=2, batch=3, lr=3e-3)
    m2 = train_token2wav(tmp_path / "data", out, cfg, progress=False, model_cfg=TINY)
    rows = (out / "train_log.csv").read_text().splitlines()
    assert len(rows) == 3 and m2["epoch"] == 2
    first = dict(zip(rows[0].split(","), rows[1].split(",")))
    assert m2["train_l1"] < float(first["train_l1"]) and m2["val_l1"] < float(first["val_l1"])
    assert (out / "train_state.pt").exists() and (out / "model.safetensors").exists()
    m3 = train_token2wav(tmp_path / "data", out, TrainConfig(epochs=3, batch=3, lr=3e-3), progress=False,
                         model_cfg=TINY)
    assert m3["epoch"] == 3 and m3["step"] == 3 * 2 and len((out / "train_log.csv").read_text().splitlines()) == 4
    detok = NanoToken2Wav.from_pretrained(out)
    assert detok.config == TINY and len(detok.decode(np.zeros(30, np.int64))) == 30 * SPT
    with pytest.raises(ValueError, match="other settings"):
        train_token2wav(tmp_path / "data", out, TrainConfig(epochs=3, batch=2), progress=False, model_cfg=TINY)
    # Griffin-Lim settings are decode-only: the finished run re-saves its model with the new ones
    fewer = dataclasses.replace(TINY, gl_iters=TINY.gl_iters + 3)
    train_token2wav(tmp_path / "data", out, TrainConfig(epochs=3, batch=3, lr=3e-3), progress=False, model_cfg=fewer)
    assert NanoToken2Wav.from_pretrained(out).config == fewer
    assert len((out / "train_log.csv").read_text().splitlines()) == 4          # nothing trained again
    with pytest.raises(ValueError, match="other settings"):
        train_token2wav(tmp_path / "data", out, TrainConfig(epochs=3, batch=3, lr=3e-3), progress=False,
                        model_cfg=dataclasses.replace(TINY, channels=TINY.channels * 2))


# --- the real (CosyVoice2-style) token2wav adapter --------------------------------------------------------------
def token2wav_folder(root, prompt: bool = True):
    root.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES:
        (root / name).write_bytes(b"")
    if prompt:
        sf.write(root / "prompt.wav", np.zeros(1600, np.float32), 16000)
    return root


def test_cosyvoice_reports_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Step-Audio-2-mini"):
        CosyVoiceToken2Wav(tmp_path / "absent")
    (tmp_path / "t2w").mkdir()
    (tmp_path / "t2w" / "flow.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"lacks \['flow.yaml', 'hift.pt'"):
        CosyVoiceToken2Wav(tmp_path / "t2w")
    token2wav_folder(tmp_path / "noprompt" / "token2wav", prompt=False)
    with pytest.raises(FileNotFoundError, match="default_female.wav"):
        CosyVoiceToken2Wav(tmp_path / "noprompt")


def test_cosyvoice_reports_the_missing_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "token2wav", None)    # as if step-audio2 were not installed
    folder = token2wav_folder(tmp_path / "Step-Audio-2-mini" / "token2wav")
    with pytest.raises(ImportError, match="pip install step-audio2"):
        CosyVoiceToken2Wav(folder.parent)
    with pytest.raises(ImportError, match="pip install step-audio2"):
        load_detokenizer(folder)


class FakeToken2wav:
    """Stands in for step-audio2's Token2wav: the documented calls, with its 3840-sample held-back tail."""

    def __init__(self, model_path, float16=False):
        self.calls, self.hift_cache_dict = [], {}

    def __call__(self, tokens, prompt_wav):
        buf = io.BytesIO()
        sf.write(buf, np.full(960 * len(tokens) + 17, 0.25, np.float32), 24000, format="WAV")
        return buf.getvalue()

    def set_stream_cache(self, prompt_wav):
        self.calls.append(("set", prompt_wav))
        self.hift_cache_dict, self.first = {"speech": torch.zeros(1, 0)}, True

    def stream(self, tokens, prompt_wav, last_chunk=False):
        self.calls.append(("stream", len(tokens), last_chunk))
        n = 960 * (len(tokens) if last_chunk else len(tokens) - 3) - (3840 if self.first else 0)
        self.first = False
        self.hift_cache_dict["speech"] = torch.full((1, 3840), 0.5)
        return (np.full(n + (3840 if last_chunk else 0), 0.5) * 32767).astype("<i2").tobytes()


def test_cosyvoice_adapter_drives_the_package_in_25_plus_3_chunks(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "token2wav", types.SimpleNamespace(Token2wav=FakeToken2wav))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    detok = load_detokenizer(f"cosyvoice:{token2wav_folder(tmp_path / 'tw')}")
    assert isinstance(detok, CosyVoiceToken2Wav) and detok.sample_rate == 24000 and detok.samples_per_token == 960
    toks = np.arange(60) * 100
    assert len(detok.decode(toks)) == 60 * 960              # trimmed to the exact timeline
    with detok.stream() as s:
        chunks = s.push(toks)
        tail = s.flush()
    assert [c for c in detok.impl.calls if c[0] == "stream"] == [("stream", 28, False), ("stream", 28, False),
                                                                 ("stream", 10, True)]
    assert len(np.concatenate(chunks + [tail])) == 60 * 960 and abs(float(chunks[0][0]) - 0.5) < 1e-3
    with pytest.raises(ValueError, match="out of range"):
        detok.decode([6561])
    a, b = detok.stream(), detok.stream()
    a.push(toks[:28])
    b.push(toks[:28])
    with pytest.raises(RuntimeError, match="one stream cache"):
        a.push(toks[:28])
    assert cosyvoice.looks_like_token2wav_folder(tmp_path / "tw")


def test_committed_nano_token2wav_speaks_unseen_answers():
    """checkpoints/a2llm-nano's token2wav on a freshly generated answer: exact duration, speech where the
    phones are, near-silence for silence tokens."""
    from a2llm.data.nano.generate import NanoConfig, make_sample
    from a2llm.lalm.detokenizer import load_detokenizer

    det = load_detokenizer("nano")
    s = make_sample(2, NanoConfig(seed=99))
    pcm = det.decode(s.audio_tokens)
    assert det.sample_rate == 16000 and len(pcm) == len(s.audio_tokens) * 640
    frames = pcm[: len(s.audio_tokens) * 640].reshape(-1, 640)
    ref = s.response_audio[: len(frames) * 640]
    ref = np.pad(ref, (0, len(frames) * 640 - len(ref))).reshape(-1, 640)
    env, ref_env = (np.log(np.sqrt((x ** 2).mean(1)) + 1e-4) for x in (frames, ref))
    assert np.corrcoef(env, ref_env)[0, 1] > 0.8
    assert np.sqrt((det.decode(np.zeros(50, np.int64)) ** 2).mean()) < 1e-3
