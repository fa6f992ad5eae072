"""The Step-Audio-2 token2wav adapter against stand-ins of the two public ``token2wav`` module shapes.

The stand-ins are real modules written to a temporary ``token2wav.py`` (so their source can be read, as the adapter
does): the PyPI wheel's shape (``__call__`` + ``set_stream_cache`` / ``stream``, CUDA hard-coded with ``.cuda()``,
``device="cuda"`` and CUDA autocast, a 3840-sample held-back vocoder tail) and the GitHub file's shape (``__call__``
only, device from a module-level ``get_device()``). Their audio encodes the tokens (token / 8192 for 960 samples
each), so the tests can check which tokens were played where.
"""
import importlib.util
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from a2llm.lalm import cosyvoice
from a2llm.lalm.cosyvoice import CROSSFADE, REQUIRED_FILES, CosyVoiceToken2Wav
from a2llm.lalm.detokenizer import load_detokenizer

WHEEL_SHAPE = '''
import io

import numpy as np
import soundfile as sf
import torch

CALLS = []
HOLD = 3840          # the vocoder's held-back tail (160 ms at 24 kHz)


class Token2wav:
    def __init__(self, model_path, float16=False):
        CALLS.append(("init", model_path, float16))
        self.flow = torch.nn.Linear(1, 1).cuda().eval()
        self.window = torch.from_numpy(np.hamming(8)).cuda()
        self.stream_cache = None

    def _speech(self, tokens):
        t = torch.tensor([tokens], dtype=torch.int32, device="cuda")
        with torch.amp.autocast("cuda", dtype=torch.float32):
            return (t.float() / 8192).repeat_interleave(960, dim=1)         # [1, 960 * N]

    def __call__(self, generated_speech_tokens, prompt_wav):
        CALLS.append(("call", list(generated_speech_tokens), prompt_wav))
        buf = io.BytesIO()
        sf.write(buf, self._speech(generated_speech_tokens).cpu().numpy().T, 24000, format="WAV", subtype="FLOAT")
        return buf.getvalue()

    def set_stream_cache(self, prompt_wav):
        CALLS.append(("set_stream_cache", prompt_wav))
        self.stream_cache = {"held": torch.zeros(1, 0, device="cuda")}

    def stream(self, generated_speech_tokens, prompt_wav, last_chunk=False):
        CALLS.append(("stream", list(generated_speech_tokens), prompt_wav, last_chunk))
        if self.stream_cache is None:
            raise ValueError("stream_cache is not set")
        tokens = generated_speech_tokens if last_chunk else generated_speech_tokens[:-3]
        speech = torch.cat([self.stream_cache["held"], self._speech(tokens)], dim=1)
        if not last_chunk:
            self.stream_cache["held"], speech = speech[:, -HOLD:], speech[:, :-HOLD]
        return (np.clip(speech.cpu().numpy(), -1, 1) * 32767).astype("<i2").tobytes()
'''

GITHUB_SHAPE = '''
import io

import soundfile as sf
import torch

CALLS = []
DEVICES = []
STEP = 0.0           # each call's audio is offset by STEP * (its index), like a fresh vocoder noise draw


def get_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Token2wav:
    def __init__(self, model_path, float16=False):
        self.layer = torch.nn.Linear(1, 1).to(get_device())

    def __call__(self, generated_speech_tokens, prompt_wav):
        device = get_device()
        DEVICES.append(device)
        CALLS.append((list(generated_speech_tokens), prompt_wav))
        t = torch.tensor(generated_speech_tokens, dtype=torch.float32, device=device)
        wav = (t / 8192).repeat_interleave(960) + STEP * len(CALLS)
        buf = io.BytesIO()
        sf.write(buf, wav.cpu().numpy(), 24000, format="WAV", subtype="FLOAT")
        return buf.getvalue()
'''


def install(tmp_path, monkeypatch, source: str, name: str = "token2wav"):
    """Write ``source`` as ``token2wav.py``, import it and make it the module the adapter imports."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("token2wav", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "token2wav", module)
    spec.loader.exec_module(module)
    return module


def folder(root):
    """A token2wav folder with the released file names (empty: the stand-ins read nothing) and a prompt."""
    root.mkdir(parents=True, exist_ok=True)
    for f in REQUIRED_FILES:
        (root / f).write_bytes(b"")
    sf.write(root / "prompt.wav", np.zeros(1600, np.float32), 16000)
    return root


def played(tokens) -> np.ndarray:
    """What the stand-ins say for ``tokens``: token / 8192 for 960 samples each."""
    return np.repeat(np.asarray(tokens, np.float32) / 8192, 960)


TOKENS = np.random.default_rng(0).integers(0, 6561, 60)


def test_streaming_class_gets_25_plus_3_windows_and_last_chunk(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, WHEEL_SHAPE)
    d = CosyVoiceToken2Wav(folder(tmp_path / "m" / "token2wav"), device="cpu")
    prompt = str(tmp_path / "m" / "token2wav" / "prompt.wav")
    assert d.streaming and d.sample_rate == 24000 and d.samples_per_token == 960
    assert t2w.CALLS == [("init", str(tmp_path / "m" / "token2wav"), False)]
    with d.stream() as s:
        chunks = s.push(TOKENS[:40]) + s.push(TOKENS[40:])
        tail = s.flush()
    t = TOKENS.tolist()
    assert t2w.CALLS[1:] == [("set_stream_cache", prompt), ("stream", t[0:28], prompt, False),
                             ("stream", t[25:53], prompt, False), ("stream", t[50:60], prompt, True)]
    # the wheel's chunks: 3840 samples short first (held back), the tail 3840 long; together exactly the tokens
    assert [len(c) for c in chunks] + [len(tail)] == [25 * 960 - 3840, 25 * 960, 10 * 960 + 3840]
    audio = np.concatenate(chunks + [tail])
    assert audio.dtype == np.float32 and len(audio) == 60 * 960
    np.testing.assert_allclose(audio, played(TOKENS), atol=1 / 32767)      # int16 / 32767, in order


def test_decode_uses_the_whole_utterance_call(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, WHEEL_SHAPE)
    d = load_detokenizer(f"cosyvoice:{folder(tmp_path / 'tw')}")      # the registry's factory, default device
    assert isinstance(d, CosyVoiceToken2Wav)
    audio = d.decode(TOKENS)
    assert t2w.CALLS[-1] == ("call", TOKENS.tolist(), str(tmp_path / "tw" / "prompt.wav"))
    np.testing.assert_array_equal(audio, played(TOKENS))                  # the WAV bytes, read back exactly
    assert len(d.decode(TOKENS[:0])) == 0 and len(t2w.CALLS) == 2         # nothing to say: no call


def test_cuda_hard_coded_class_runs_on_cpu_inside_the_redirect(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, WHEEL_SHAPE)
    before = (torch.Tensor.__dict__.get("cuda"), torch.nn.Module.__dict__.get("cuda"))
    if not torch.cuda.is_available():
        with pytest.raises((AssertionError, RuntimeError)):               # the class alone needs CUDA here
            t2w.Token2wav("x")
    d = CosyVoiceToken2Wav(folder(tmp_path / "tw"), device="cpu")
    assert d.device == torch.device("cpu") and d.device_handling == "redirect"
    assert d.impl.flow.weight.device.type == "cpu" and d.impl.window.device.type == "cpu"
    assert len(d.decode(TOKENS[:30])) == 30 * 960
    # everything the redirect touched is back after each call
    assert (torch.Tensor.__dict__.get("cuda"), torch.nn.Module.__dict__.get("cuda")) == before
    assert t2w.torch is torch
    auto = CosyVoiceToken2Wav(tmp_path / "tw")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert auto.device_handling == ("native" if torch.cuda.is_available() else "redirect")
    with pytest.raises(ValueError, match="float16 needs a CUDA device"):
        CosyVoiceToken2Wav(tmp_path / "tw", device="cpu", float16=True)


def test_non_streaming_class_resynthesises_the_prefix_and_crossfades(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, GITHUB_SHAPE)
    t2w.STEP = 0.01
    d = CosyVoiceToken2Wav(folder(tmp_path / "tw"))
    prompt = str(tmp_path / "tw" / "prompt.wav")
    assert not d.streaming and d.fallback == "prefix" and d.device_handling == "native"
    with d.stream() as s:
        chunks = s.push(TOKENS)
        tail = s.flush()
    t = TOKENS.tolist()
    assert t2w.CALLS == [(t[:28], prompt), (t[:53], prompt), (t, prompt)]
    assert [len(c) for c in chunks] + [len(tail)] == [25 * 960 - CROSSFADE, 25 * 960, 10 * 960 + CROSSFADE]
    offset = np.concatenate(chunks + [tail]) - played(TOKENS)          # which call each sample came from
    b1, b2 = 25 * 960 - CROSSFADE, 50 * 960 - CROSSFADE
    np.testing.assert_allclose(offset[:b1], 0.01, atol=1e-6)
    np.testing.assert_allclose(offset[b1 + CROSSFADE:b2], 0.02, atol=1e-6)
    np.testing.assert_allclose(offset[b2 + CROSSFADE:], 0.03, atol=1e-6)
    for b, lo in ((b1, 0.01), (b2, 0.02)):                              # raised-cosine fades, no steps
        ramp = offset[b:b + CROSSFADE]
        assert np.all(np.diff(ramp) > 0) and lo < ramp[0] < lo + 0.001 and lo + 0.009 < ramp[-1] < lo + 0.01


def test_non_streaming_class_can_decode_at_the_end(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, GITHUB_SHAPE)
    d = CosyVoiceToken2Wav(folder(tmp_path / "tw"), fallback="end")
    with d.stream() as s:
        chunks = s.push(TOKENS)
        tail = s.flush()
    assert [len(c) for c in chunks] == [0, 0] and len(t2w.CALLS) == 1 and t2w.CALLS[0][0] == TOKENS.tolist()
    np.testing.assert_array_equal(tail, played(TOKENS))
    with pytest.raises(ValueError, match="fallback must be one of"):
        CosyVoiceToken2Wav(tmp_path / "tw", fallback="whole")


def test_an_explicit_device_overrides_the_modules_get_device(tmp_path, monkeypatch):
    t2w = install(tmp_path, monkeypatch, GITHUB_SHAPE)
    t2w.get_device = lambda: torch.device("cuda")                        # as the module answers on a GPU machine
    d = CosyVoiceToken2Wav(folder(tmp_path / "tw"), device="cpu")
    assert d.device_handling == "get_device"
    assert len(d.decode(TOKENS[:30])) == 30 * 960 and t2w.DEVICES == [torch.device("cpu")]
    assert t2w.get_device() == torch.device("cuda")                      # restored after the call


def test_missing_package_dependency_and_weights_are_named(tmp_path, monkeypatch):
    t2w_folder = folder(tmp_path / "Step-Audio-2-mini" / "token2wav")
    monkeypatch.setitem(sys.modules, "token2wav", None)                 # step-audio2 not installed
    with pytest.raises(ImportError, match=r"PyPI package 'step-audio2'.*pip install step-audio2"):
        CosyVoiceToken2Wav(t2w_folder)
    # the module is there but one of its dependencies is not
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "token2wav.py").write_text("import s3tokenizer\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    monkeypatch.delitem(sys.modules, "token2wav")
    monkeypatch.setitem(sys.modules, "s3tokenizer", None)
    with pytest.raises(ImportError, match=r"needs 's3tokenizer'.*pip install step-audio2"):
        CosyVoiceToken2Wav(t2w_folder)
    # a token2wav module that is not step-audio2's
    install(tmp_path, monkeypatch, "class Token2wav:\n    pass\n", name="other")
    with pytest.raises(ImportError, match="is not step-audio2's"):
        CosyVoiceToken2Wav(t2w_folder)
    # weights: which files, which folder, where to get them
    (t2w_folder / "hift.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['hift.pt'\].*stepfun-ai/Step-Audio-2-mini.*token2wav"):
        CosyVoiceToken2Wav(t2w_folder.parent)
    with pytest.raises(FileNotFoundError, match="download stepfun-ai/Step-Audio-2-mini"):
        CosyVoiceToken2Wav(tmp_path / "nowhere")


def test_pcm_and_wav_readers():
    pcm = (np.array([0.5, -1.0, 1.0]) * 32767).astype("<i2").tobytes()
    np.testing.assert_allclose(cosyvoice._pcm_audio(pcm), [0.5, -1.0, 1.0], atol=1 / 32767)
    np.testing.assert_array_equal(cosyvoice._pcm_audio(torch.tensor([[0.25, 0.5]])), [0.25, 0.5])
    import io
    buf = io.BytesIO()
    sf.write(buf, np.zeros(10, np.float32), 16000, format="WAV")
    with pytest.raises(RuntimeError, match="16000 Hz audio, expected 24000"):
        cosyvoice._wav_audio(buf.getvalue())
