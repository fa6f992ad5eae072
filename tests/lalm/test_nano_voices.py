"""Voices: nano vocal-tract-length warps (same timeline, streaming == whole, formants move the right way) and the
CosyVoice adapter's prompt-wav voices (listing and errors, on CPU with a stand-in package)."""
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from a2llm.data.phones import PHONES
from a2llm.lalm.cosyvoice import REQUIRED_FILES, CosyVoiceToken2Wav, prompt_voices
from a2llm.lalm.detokenizer import load_detokenizer
from a2llm.lalm.nano_token2wav import VOICES, NanoToken2Wav, NanoToken2WavConfig, Token2Mel, warp_matrix

TINY = NanoToken2WavConfig(channels=32, n_fft=512, win_length=512, n_mels=40, gl_iters=8)
SPT = 640


@pytest.fixture(scope="module")
def tiny() -> NanoToken2Wav:
    torch.manual_seed(0)
    return NanoToken2Wav(Token2Mel(TINY))


@pytest.fixture(scope="module")
def nano() -> NanoToken2Wav:
    return load_detokenizer("nano")


@pytest.fixture(scope="module")
def speech_tokens() -> np.ndarray:
    """Three template answers as the nano corpus's answer voice says them (real phone sequences, ~9 s); fixed
    texts, so that the corpus's world can grow without moving this test's spectra."""
    from a2llm.data.nano.generate import NanoConfig, spoken_answer
    from a2llm.data.phones import frame_tokens

    # the answers (and rates) the corpus's samples 0-2 of seed 99 had until the tenth session
    texts = (("It is about ten minutes by bus.", 170),
             ("Hahaha, everyone was laughing at the garden, it was hilarious!", 162),
             ("I am sorry, the game was cancelled. It is a real pity.", 165))
    out = []
    for text, rate in texts:
        cfg = NanoConfig(seed=99, answer_rate=(rate, rate + 1))
        utt, _, frames, _ = spoken_answer(text, np.random.default_rng(0), cfg)
        out.append(frame_tokens(utt.phonemes, frames))
    return np.concatenate(out)


def spectral_centroid(pcm: np.ndarray, frames: np.ndarray) -> float:
    """Mean over the given 40 ms frames of each frame's power-spectrum centroid (Hz)."""
    x = pcm[: len(frames) * SPT].reshape(-1, SPT)[frames] * np.hanning(SPT)
    power = np.abs(np.fft.rfft(x, 2048, axis=1)) ** 2
    f = np.fft.rfftfreq(2048, 1 / 16000)
    return float(((power * f).sum(1) / power.sum(1).clip(1e-20)).mean())


def first_formant(pcm: np.ndarray, frames: np.ndarray) -> float:
    """Peak (Hz) in 200-1200 Hz of the smoothed mean power spectrum of the given frames."""
    x = pcm[: len(frames) * SPT].reshape(-1, SPT)[frames] * np.hanning(SPT)
    power = (np.abs(np.fft.rfft(x, 2048, axis=1)) ** 2).mean(0)
    f = np.fft.rfftfreq(2048, 1 / 16000)
    smooth = np.convolve(power, np.hanning(25), "same")
    band = (f > 200) & (f < 1200)
    return float(f[band][np.argmax(smooth[band])])


# --- the interface ----------------------------------------------------------------------------------------------
def test_voices_are_listed_and_share_the_weights(tiny):
    assert tiny.voices() == list(VOICES) == ["default", "lower", "higher", "child"]
    assert tiny.voice == "default" and tiny.warp == 1.0
    assert tiny.with_voice("default") is tiny and tiny.with_voice(None) is tiny
    low = tiny.with_voice("lower")
    assert low.voice == "lower" and low.warp == VOICES["lower"] < 1 < VOICES["higher"] < VOICES["child"]
    assert low.model is tiny.model and low.window is tiny.window and low.mel_basis is tiny.mel_basis
    assert tiny.voice == "default"                          # the original is untouched
    assert low.with_voice(None).voice == "default"          # None: back to the default voice
    assert NanoToken2Wav(tiny.model, voice="child").warp == VOICES["child"]


def test_unknown_voice_is_a_clear_error_listing_the_voices(tiny):
    for bad in (lambda: tiny.with_voice("robot"), lambda: NanoToken2Wav(tiny.model, voice="robot")):
        with pytest.raises(ValueError, match=r"unknown voice 'robot'.*\['default', 'lower', 'higher', 'child'\]"):
            bad()


def test_warp_matrix_moves_a_peak_by_alpha_and_is_non_negative():
    n = 513
    mag = torch.zeros(n, 1)
    mag[100] = 1.0
    for alpha in (0.88, 1.12, 1.25):
        w = warp_matrix(n, alpha)
        assert w.shape == (n, n) and (w >= 0).all()
        out = (w @ mag)[:, 0]
        assert abs(int(out.argmax()) - 100 * alpha) <= 1
    with pytest.raises(ValueError, match="positive"):
        warp_matrix(n, 0.0)


# --- timeline and streaming -------------------------------------------------------------------------------------
@pytest.mark.parametrize("voice", list(VOICES))
@pytest.mark.parametrize("n", [0, 1, 28, 53])
def test_a_voice_keeps_the_length(tiny, voice, n):
    pcm = tiny.with_voice(voice).decode(np.random.default_rng(n).integers(0, len(PHONES), n))
    assert pcm.shape == (n * SPT,) and pcm.dtype == np.float32 and np.isfinite(pcm).all()


@pytest.mark.parametrize("voice", ["lower", "child"])
@pytest.mark.parametrize("piece", [1, 7, 100])
def test_streaming_equals_whole_decode_for_a_warped_voice(tiny, voice, piece):
    det = tiny.with_voice(voice)
    toks = np.random.default_rng(4).integers(0, len(PHONES), 103)
    whole = det.decode(toks)
    with det.stream() as s:
        parts = [c for i in range(0, len(toks), piece) for c in s.push(toks[i:i + piece])]
        parts.append(s.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4)
    assert np.abs(whole - tiny.decode(toks)).max() > 1e-3          # and it is another sound than the default


def test_warp_keeps_each_frames_energy(tiny):
    mag = tiny.mel_to_magnitude(tiny.mel(np.random.default_rng(1).integers(1, len(PHONES), 20)))
    for voice in VOICES:
        warped = tiny.with_voice(voice).warp_magnitude(mag)
        assert warped.shape == mag.shape and (warped >= 0).all()
        torch.testing.assert_close(warped.square().sum(0), mag.square().sum(0), rtol=1e-4, atol=1e-8)


# --- what it sounds like (measured, on checkpoints/a2llm-nano) --------------------------------------------------
def test_lower_and_higher_move_the_spectrum_down_and_up(nano, speech_tokens):
    """Same phones, same timing: the spectral centroid and first formant move by about alpha, and the speech
    envelope (when the sounds are) stays the default voice's."""
    pcm = {v: nano.with_voice(v).decode(speech_tokens) for v in VOICES}
    frames = pcm["default"].reshape(-1, SPT)
    rms = np.sqrt((frames ** 2).mean(1))
    voiced = rms > 0.1 * rms.max()
    centroid = {v: spectral_centroid(x, voiced) for v, x in pcm.items()}
    f1 = {v: first_formant(x, voiced) for v, x in pcm.items()}
    for v, alpha in VOICES.items():
        assert len(pcm[v]) == len(speech_tokens) * SPT
        ratio = centroid[v] / centroid["default"]
        assert abs(ratio - alpha) < 0.06, (v, centroid)       # measured: 0.891, 1.117, 1.209
        assert abs(f1[v] / f1["default"] - alpha) < 0.08, (v, f1)
        env = np.log(np.sqrt((pcm[v].reshape(-1, SPT) ** 2).mean(1)) + 1e-4)
        assert np.corrcoef(env, np.log(rms + 1e-4))[0, 1] > 0.95     # motion sync: the same timing
    assert centroid["lower"] < centroid["default"] < centroid["higher"] < centroid["child"]


# --- CosyVoice: the reference recordings are its voices ---------------------------------------------------------
class FakeToken2wav:
    def __init__(self, model_path, float16=False):
        self.prompts = []

    def __call__(self, tokens, prompt_wav):
        import io

        self.prompts.append(prompt_wav)
        buf = io.BytesIO()
        sf.write(buf, np.zeros(960 * len(tokens), np.float32), 24000, format="WAV")
        return buf.getvalue()

    def set_stream_cache(self, prompt_wav):
        self.prompts.append(prompt_wav)

    def stream(self, tokens, prompt_wav, last_chunk=False):
        return np.zeros(960 * (len(tokens) if last_chunk else len(tokens) - 3), "<i2").tobytes()


def _folder(root, prompts=("prompt.wav",), parent=()):
    t2w = root / "token2wav"
    t2w.mkdir(parents=True)
    for name in REQUIRED_FILES:
        (t2w / name).write_bytes(b"")
    for base, names in ((t2w, prompts), (root, parent)):
        for name in names:
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(base / name, np.zeros(1600, np.float32), 16000)
    return t2w


def test_prompt_voices_lists_the_recordings_default_first(tmp_path):
    t2w = _folder(tmp_path / "m", prompts=("prompt.wav", "default_male.wav"),
                  parent=("assets/default_female.wav", "assets/default_male.wav"))
    voices = prompt_voices(t2w)
    assert list(voices) == ["prompt", "default_male", "default_female"]          # first of a stem wins
    assert voices["default_male"] == t2w / "default_male.wav"
    assert voices["default_female"] == tmp_path / "m" / "assets" / "default_female.wav"
    mine = tmp_path / "mine.wav"
    sf.write(mine, np.zeros(1600, np.float32), 16000)
    assert list(prompt_voices(t2w, mine)) == ["mine", "prompt", "default_male", "default_female"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prompt_voices(t2w, tmp_path / "absent.wav")
    assert prompt_voices(_folder(tmp_path / "none", prompts=())) == {}


def test_cosyvoice_voices_switch_the_prompt_wav_and_share_the_models(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "token2wav", types.SimpleNamespace(Token2wav=FakeToken2wav))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    t2w = _folder(tmp_path / "m", prompts=("prompt.wav", "default_male.wav"))
    det = CosyVoiceToken2Wav(t2w)
    assert det.voices() == ["prompt", "default_male"] and det.voice == "prompt"
    male = det.with_voice("default_male")
    assert male.impl is det.impl and male.prompt_wav == t2w / "default_male.wav" and det.prompt_wav.stem == "prompt"
    assert len(male.decode(np.arange(30))) == 30 * 960 and det.impl.prompts[-1] == str(t2w / "default_male.wav")
    a, b = det.stream(), male.stream()                  # one stream cache for both voices' copies
    a.push(np.arange(28))
    b.push(np.arange(28))
    with pytest.raises(RuntimeError, match="one stream cache"):
        a.push(np.arange(28))
    with pytest.raises(ValueError, match=r"unknown voice 'child'.*\['prompt', 'default_male'\]"):
        det.with_voice("child")
