"""Desktop mode with a fake sound card: a spoken question is heard, answered aloud by A²-LLM-nano and written as
mp4; speaking during the reply cuts it (barge-in); missing devices and libraries get clear messages."""
import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import resample_poly

import ui.desktop as desktop
from a2llm.data.espeak import synthesize
from renderer.video import probe_mp4
from ui.conversation import ChatSession
from ui.desktop import DesktopChat, DesktopError, EnergyVAD, TurnDetector, Window

ROOT = Path(__file__).resolve().parents[2]
CKPT = str(ROOT / "checkpoints" / "a2llm-nano")        # app.py's default: one cached model for every test here


def speech(text: str, rate: int = 16000, voice: str = "en-us+m7") -> np.ndarray:
    utt = synthesize(text, voice=voice, rate=165, pitch=50)
    return resample_poly(utt.audio, rate, utt.sample_rate).astype(np.float32)


class FakeInputStream:
    """Plays its card's script into the callback in real time, then silence until stopped."""

    def __init__(self, card, device, channels, samplerate, dtype, blocksize, callback):
        assert channels == 1 and dtype == "float32"
        self.card, self.rate, self.block, self.callback = card, samplerate, blocksize, callback
        self.running = threading.Event()

    def start(self):
        self.running.set()
        threading.Thread(target=self._feed, daemon=True).start()

    def _blocks(self):
        for item in self.card.script:
            if isinstance(item, str):                              # "playback": wait for the avatar to talk
                while self.running.is_set() and not self.card.played:
                    yield np.zeros(self.block, np.float32)
                continue
            for s in range(0, len(item), self.block):
                yield np.pad(item[s:s + self.block], (0, max(0, self.block - len(item[s:]))))
        while True:
            yield np.zeros(self.block, np.float32)

    def _feed(self):
        for block in self._blocks():
            if not self.running.is_set():
                return
            self.callback(block[:, None], self.block, None, None)
            time.sleep(self.block / self.rate)

    def stop(self):
        self.running.clear()

    def close(self):
        self.card.mic_closed = True


class FakeOutputStream:
    """Records what is played, blocking like a real device (real time)."""

    def __init__(self, card, device, channels, samplerate, dtype):
        self.card, self.rate = card, samplerate
        card.output_rate = samplerate

    def start(self):
        pass

    def write(self, data):
        assert data.ndim == 2 and data.shape[1] == 1 and data.dtype == np.float32
        self.card.played.append(data[:, 0].copy())
        time.sleep(len(data) / self.rate)

    def stop(self):
        pass

    def close(self):
        pass


class FakeSoundDevice:
    """Stands in for the sounddevice module: one microphone (only ``mic_rate``) and one speaker, either absent."""

    class PortAudioError(Exception):
        pass

    def __init__(self, script=(), mic=True, speaker=True, mic_rate=16000):
        self.script, self.mic_rate = list(script), mic_rate
        self.devices = ([{"name": "fake mic", "max_input_channels": 1, "max_output_channels": 0,
                          "default_samplerate": float(mic_rate)}] if mic else []) + \
                       ([{"name": "fake speaker", "max_input_channels": 0, "max_output_channels": 2,
                          "default_samplerate": 48000.0}] if speaker else [])
        self.default = SimpleNamespace(device=[0 if mic else -1, len(self.devices) - 1 if speaker else -1])
        self.played, self.output_rate, self.mic_closed = [], None, False

    def query_devices(self):
        return list(self.devices)

    def check_input_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        if samplerate != self.mic_rate:
            raise self.PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    def check_output_settings(self, device=None, channels=None, dtype=None, samplerate=None):
        pass

    def InputStream(self, **kw):
        return FakeInputStream(self, **kw)

    def OutputStream(self, **kw):
        return FakeOutputStream(self, **kw)


@pytest.fixture(scope="module")
def loaded():
    return ChatSession(checkpoint=CKPT, size=64)


@pytest.fixture
def session(loaded):
    loaded.reset()                                   # every test starts a new dialogue on the loaded engine
    return loaded


@pytest.fixture(scope="module")
def question():
    return speech("Did you enjoy the party?")


def test_help_mentions_desktop_mode():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    for opt in ("--desktop", "--text", "--out", "--device", "--no-barge-in", "libportaudio2"):
        assert opt in out


@pytest.mark.parametrize("vad", ["energy", "silero"])
def test_a_question_then_silence_is_one_turn(question, vad):
    is_speech = EnergyVAD() if vad == "energy" else desktop.make_vad("silero")[0]
    det = TurnDetector(16000, is_speech)
    stream = np.concatenate([np.zeros(8000, np.float32), question, np.zeros(32000, np.float32)])
    events = [ev for s in range(0, len(stream), 700) for ev in det.feed(stream[s:s + 700])]
    assert events[0] == "start" and len(events) == 2
    seconds = len(events[1]) / 16000                      # the question, ≤ 0.3 s before it, 0.8 s of silence after
    assert len(question) / 16000 + 0.5 < seconds < len(question) / 16000 + 1.3


def test_window_follows_the_speech_clock():
    shown = []
    w = Window(shown.append)
    w.push([np.full((2, 2, 3), i, np.uint8) for i in range(10)])
    for t in (0.0, 0.01, 0.2, 0.2, 5.0):
        w.pump(t)
    assert [int(f[0, 0, 0]) for f in shown] == [0, 5, 9]


def test_a_spoken_turn_is_answered_aloud_and_written(session, question, tmp_path, capsys):
    card = FakeSoundDevice([resample_poly(question, 3, 1).astype(np.float32)], mic_rate=48000)  # 48 kHz mic
    chat = DesktopChat(session, out=tmp_path, sd=card)
    chat.run_voice(max_turns=1)
    out = capsys.readouterr().out
    (result,) = chat.results
    m = result["metrics"]
    assert m["text"] and not m["cancelled"] and m["speech_s"] >= 1.0
    played = np.concatenate(card.played)
    assert card.output_rate == 16000 and np.abs(played).max() > 0.01
    assert abs(len(played) / 16000 - m["speech_s"]) < 0.1              # the whole reply was played
    assert result["video"].parent == tmp_path and probe_mp4(result["video"])["frames"] == round(25 * m["speech_s"])
    assert result["motion"].exists() and card.mic_closed
    for shown in ("you: (spoken", "end of turn: silero-vad", "TTFT", "TTFA", "RTF", str(result["video"]), m["text"]):
        assert shown in out


def test_speaking_during_the_reply_cuts_it(session, question, tmp_path, capsys):
    class SlowWindow(Window):
        """A display that takes its time with the first reply's frames: that reply is surely still being made
        when the barge-in (~0.1 s of speech after playback starts) is heard, however fast this machine decodes."""

        def push(self, images):
            if not chat.results:
                time.sleep(0.25)
            super().push(images)

    shown = []
    card = FakeSoundDevice([question, "playback", speech("How was the concert?", voice="en-us")])
    chat = DesktopChat(session, out=tmp_path, sd=card, window=SlowWindow(shown.append))
    chat.run_voice(max_turns=2)
    out = capsys.readouterr().out
    first, second = chat.results
    assert first["cut"] and first["metrics"]["cancelled"]
    assert "barge-in" in out and "cut (barge-in)" in out
    assert second["metrics"]["text"] and not second["metrics"]["cancelled"]
    assert shown and shown[-1].shape == (64, 64, 3)                    # the avatar followed the speech


def test_ctrl_c_during_a_reply_exits_cleanly(session, question, tmp_path, monkeypatch, capsys):
    card = FakeSoundDevice([question])
    read = desktop.Microphone.read

    def read_until_the_avatar_talks(self, timeout):
        if card.played:
            raise KeyboardInterrupt
        return read(self, timeout)

    monkeypatch.setattr(desktop.Microphone, "read", read_until_the_avatar_talks)
    chat = DesktopChat(session, out=tmp_path, sd=card)
    chat.run_voice()                                                  # returns instead of raising
    assert "bye" in capsys.readouterr().out and card.mic_closed
    assert chat.results and chat.results[0]["metrics"]["cancelled"]    # the cut reply is still reported and saved
    assert not [t for t in threading.enumerate() if t.name in ("reply", "speaker")]


def test_typed_turns_without_a_microphone(session, tmp_path, capsys):
    card = FakeSoundDevice(mic=False)
    chat = DesktopChat(session, out=tmp_path, sd=card)
    chat.run_text(io.StringIO("How was the concert?\n\n"))
    out = capsys.readouterr().out
    (result,) = chat.results
    assert result["video"].exists() and card.played and "TTFT" in out and "you> " in out


def test_no_microphone_is_a_clear_error_before_loading_anything(tmp_path):
    chat = DesktopChat(ChatSession(checkpoint="/nonexistent"), out=tmp_path, sd=FakeSoundDevice(mic=False))
    with pytest.raises(DesktopError, match="no microphone found: sounddevice.query_devices.. lists none; use --text"):
        chat.run_voice()


def test_a_missing_portaudio_says_what_to_install(monkeypatch):
    import importlib

    def no_portaudio(name, *a, **k):
        raise OSError("PortAudio library not found")

    monkeypatch.setattr(importlib, "import_module", no_portaudio)
    with pytest.raises(DesktopError, match="apt-get install libportaudio2"):
        desktop._sounddevice()


def test_app_dispatches_desktop_mode(monkeypatch, tmp_path, capsys):
    import app

    monkeypatch.setattr(desktop, "_sounddevice", lambda: FakeSoundDevice(mic=False, speaker=False))
    assert app.main(["--desktop", "--no-window", "--out", str(tmp_path)]) == 1
    assert "no microphone found" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("How was the concert?\n"))
    assert app.main(["--text", "--no-window", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no speaker found" in out and "video: " in out and list(tmp_path.glob("*.mp4"))
