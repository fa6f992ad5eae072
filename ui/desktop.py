"""Desktop mode (``python app.py --desktop``): talk to the avatar through this machine's microphone and speaker.

    python app.py --desktop                 # hands-free: speak, pause, the avatar answers aloud
    python app.py --desktop --text          # type the turns instead (no microphone needed)

No Gradio. The microphone is read continuously (sounddevice ``InputStream``, mono, 16 kHz when the device offers
it, else the device's own rate and the turn is resampled by :func:`ui.conversation.prepare_audio`). A turn starts
after ~0.1 s of speech and ends after 0.8 s of silence; speech is told from silence by silero-vad when the
``silero_vad`` package is importable, else by an energy threshold over the room's noise floor (the start-up line
says which runs). The turn goes through :class:`ui.conversation.ChatSession`; the reply's speech is played as it
streams (sounddevice ``OutputStream``) and each turn's rendered mp4 (+ motion .npz) is written to ``--out``,
with its path, the reply text and TTFT / TTFA / RTF printed. With a display the avatar is also shown live in a
window (matplotlib), in step with the speech.

Barge-in: speaking while the avatar talks cuts the reply (engine cancel + playback dropped) and the new speech
is the next turn. The microphone then hears the loudspeaker too, so use headphones, or ``--no-barge-in`` (the
microphone is ignored while the avatar speaks). In ``--text`` mode Ctrl-C during a reply cuts it; Ctrl-C or
Ctrl-D at the prompt quits. In voice mode Ctrl-C quits.

sounddevice (and its PortAudio library, Debian ``libportaudio2``) is imported only here, lazily, through
:func:`_sounddevice`; tests replace that loader with a fake module.
"""
from __future__ import annotations

import argparse
import importlib
import math
import queue
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from ui.conversation import MAX_SECONDS, SAMPLE_RATE, ChatSession, TurnUpdate, prepare_audio
from ui.files import OUTPUT_ROOT

FRAME_S = 0.032          # VAD frame: 512 samples at 16 kHz (silero-vad's window)
FPS = 25                 # motion / video frame rate
NO_MIC = "no microphone found: sounddevice.query_devices() lists none; use --text or plug one in"
NO_SPEAKER = "no speaker found: sounddevice.query_devices() lists no output device"


class DesktopError(RuntimeError):
    """A desktop-mode problem with a message for the user (missing library, device, bad option)."""


def _sounddevice():
    """The sounddevice module, imported on first use, or a :class:`DesktopError` saying what to install."""
    try:
        return importlib.import_module("sounddevice")
    except ImportError as e:
        raise DesktopError("desktop mode needs the sounddevice package: "
                           ".venv/bin/python -m pip install 'sounddevice>=0.4'") from e
    except OSError as e:                          # sounddevice raises OSError when libportaudio is absent
        raise DesktopError(f"the PortAudio library is missing ({e}): apt-get install libportaudio2") from e


# ---------------------------------------------------------------------------------------------- devices
def pick_device(sd, want: str | None, kind: str) -> tuple[int, dict]:
    """(index, info) of the ``kind`` ("input" / "output") device named by ``want`` (index or part of its name;
    None: the system default, else the first one), or a :class:`DesktopError`."""
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    usable = [(i, d) for i, d in enumerate(sd.query_devices()) if d.get(key, 0) > 0]
    if not usable:
        raise DesktopError(NO_MIC if kind == "input" else NO_SPEAKER)
    listing = "; ".join(f"{i}: {d['name']}" for i, d in usable)
    if want is None:
        default = sd.default.device[0 if kind == "input" else 1]
        return next(((i, d) for i, d in usable if i == default), usable[0])
    if str(want).strip().isdigit():
        hits = [(i, d) for i, d in usable if i == int(want)]
    else:
        hits = [(i, d) for i, d in usable if str(want).lower() in d["name"].lower()]
    if len(hits) != 1:
        why = "matches no" if not hits else "matches more than one"
        raise DesktopError(f"--{'device' if kind == 'input' else 'speaker'} {want!r} {why} {kind} device "
                           f"(the {kind} devices: {listing})")
    return hits[0]


def _rate(check: Callable, device: int, preferred: int, default: float) -> int:
    """``preferred`` when the device accepts it for mono float32, else the device's default rate."""
    try:
        check(device=device, channels=1, dtype="float32", samplerate=preferred)
        return preferred
    except Exception:                               # noqa: BLE001 (PortAudioError, ValueError: not supported)
        return int(default)


def _resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return np.asarray(pcm, np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(int(src), int(dst))
    return resample_poly(pcm, dst // g, src // g).astype(np.float32)


class Microphone:
    """The input stream: blocks of mono float32 samples, queued by PortAudio's callback thread."""

    def __init__(self, sd, want: str | None = None):
        self.device, info = pick_device(sd, want, "input")
        self.name = info["name"]
        self.rate = _rate(sd.check_input_settings, self.device, SAMPLE_RATE, info["default_samplerate"])
        self.blocks: queue.Queue[np.ndarray] = queue.Queue()
        try:
            self.stream = sd.InputStream(device=self.device, channels=1, samplerate=self.rate, dtype="float32",
                                         blocksize=round(self.rate * FRAME_S), callback=self._callback)
        except Exception as e:                       # noqa: BLE001 (PortAudioError and friends)
            raise DesktopError(f"could not open the microphone {self.name!r} at {self.rate} Hz: {e}") from e

    def _callback(self, indata, frames, time_info, status) -> None:
        self.blocks.put(np.array(indata[:, 0], dtype=np.float32))

    def read(self, timeout: float) -> np.ndarray | None:
        """The next block, or None when none came within ``timeout`` seconds."""
        try:
            return self.blocks.get(timeout=timeout)
        except queue.Empty:
            return None

    def __enter__(self):
        self.stream.start()
        return self

    def __exit__(self, *exc):
        self.stream.stop()
        self.stream.close()


class Speaker:
    """The output stream, fed from a queue by a writer thread so the reply plays while it is being made.

    Every reply plays in an *epoch*; :meth:`stop` starts a new one, and audio of older epochs is dropped (the
    writer checks between 0.1 s pieces, so a barge-in silences the reply within ~0.1 s + the device's latency)."""

    PIECE_S = 0.1

    def __init__(self, sd, want: str | None = None, sample_rate: int = SAMPLE_RATE):
        self.device, info = pick_device(sd, want, "output")
        self.name = info["name"]
        self.rate = _rate(sd.check_output_settings, self.device, sample_rate, info["default_samplerate"])
        try:
            self.stream = sd.OutputStream(device=self.device, channels=1, samplerate=self.rate, dtype="float32")
            self.stream.start()
        except Exception as e:                       # noqa: BLE001
            raise DesktopError(f"could not open the speaker {self.name!r} at {self.rate} Hz: {e}") from e
        self.epoch, self.position = 0, 0             # samples of the current epoch written so far
        self._items: queue.Queue = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="speaker", daemon=True)
        self._writer.start()

    def new_turn(self) -> int:
        """Start a new epoch for the next reply (drops anything still queued); returns it."""
        with self._lock:
            self.epoch += 1
            self.position = 0
            return self.epoch

    stop = new_turn                                   # barge-in: the same thing, and nothing will be queued

    def play(self, pcm: np.ndarray, sample_rate: int, epoch: int) -> None:
        """Queue speech of ``epoch`` (ignored once that epoch is over)."""
        if epoch != self.epoch:
            return
        with self._lock:
            self._pending += 1
        self._items.put((epoch, _resample(pcm, sample_rate, self.rate)))

    def busy(self) -> bool:
        """Speech is queued or playing (after :meth:`stop`, the dropped speech drains within one piece)."""
        return self._pending > 0

    @property
    def position_s(self) -> float:
        return self.position / self.rate

    def _write_loop(self) -> None:
        piece = max(1, round(self.PIECE_S * self.rate))
        while (item := self._items.get()) is not None:
            epoch, pcm = item
            for s in range(0, len(pcm), piece):
                if epoch != self.epoch:
                    break
                self.stream.write(np.ascontiguousarray(pcm[s:s + piece, None]))
                if epoch == self.epoch:
                    self.position += len(pcm[s:s + piece])
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self.stop()
        self._items.put(None)
        self._writer.join(timeout=5)
        self.stream.stop()
        self.stream.close()


# ------------------------------------------------------------------------------------------ turn taking
class EnergyVAD:
    """Speech = frame level more than ``margin_db`` over the room's noise floor (and over ``min_db`` dBFS).

    The floor follows quiet frames down at once and creeps up 1.5 dB/s, so it adapts to a noisier room
    without ever counting the speech itself as noise."""

    name = "energy threshold"

    def __init__(self, margin_db: float = 15.0, min_db: float = -50.0):
        self.margin_db, self.min_db = margin_db, min_db
        self.reset()

    def reset(self) -> None:
        self.floor = -60.0

    def __call__(self, frame: np.ndarray) -> bool:
        db = max(20 * math.log10(float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) + 1e-10), -90.0)
        voiced = db > max(self.floor + self.margin_db, self.min_db)
        self.floor = db if db < self.floor else self.floor + min(db - self.floor, 0.05)
        return voiced


class SileroVAD:
    """Speech = silero-vad probability over ``threshold`` (frames resampled to its 512-sample 16 kHz window)."""

    name = "silero-vad"

    def __init__(self, threshold: float = 0.5):
        from silero_vad import load_silero_vad

        self.model, self.threshold = load_silero_vad(), threshold
        self.window = round(SAMPLE_RATE * FRAME_S)

    def reset(self) -> None:
        self.model.reset_states()

    def __call__(self, frame: np.ndarray) -> bool:
        import torch
        from scipy.signal import resample

        x = frame if len(frame) == self.window else resample(frame, self.window)
        with torch.no_grad():
            return float(self.model(torch.from_numpy(np.asarray(x, np.float32)), SAMPLE_RATE)) > self.threshold


def make_vad(kind: str = "auto"):
    """(speech/silence classifier, a line saying which one runs). ``kind``: auto (silero-vad when importable),
    silero, energy."""
    if kind not in ("auto", "silero", "energy"):
        raise DesktopError(f"--vad must be auto, silero or energy, not {kind!r}")
    if kind == "energy":
        return EnergyVAD(), "energy threshold (--vad energy)"
    try:
        vad = SileroVAD()
    except Exception as e:                           # noqa: BLE001 (not installed, or its model failed to load)
        if kind == "silero":
            raise DesktopError(f"silero-vad is unavailable ({e}): pip install silero-vad, or --vad energy") from e
        return EnergyVAD(), f"energy threshold (silero-vad unavailable: {e})"
    return vad, "silero-vad"


class TurnDetector:
    """Cuts the microphone stream into user turns.

    :meth:`feed` takes blocks of any length and returns, in order, ``"start"`` when speech begins (after
    ``start_s`` of speech frames; a barge-in cue) and the turn's samples (with ``preroll_s`` before the start)
    once ``end_s`` of silence follows it, or when it reaches ``max_s``."""

    def __init__(self, sample_rate: int, is_speech: Callable[[np.ndarray], bool], start_s: float = 0.096,
                 end_s: float = 0.8, preroll_s: float = 0.3, max_s: float = MAX_SECONDS - 1):
        self.frame = round(sample_rate * FRAME_S)
        self.is_speech = is_speech
        self.start_n, self.end_n = max(1, round(start_s / FRAME_S)), max(1, round(end_s / FRAME_S))
        self.max_n = round(max_s / FRAME_S)
        self.pre: deque[np.ndarray] = deque(maxlen=round(preroll_s / FRAME_S) + self.start_n)
        self.reset()

    def reset(self) -> None:
        """Forget any partial turn (and the classifier's state)."""
        self.buf = np.zeros(0, np.float32)
        self.pre.clear()
        self.turn: list[np.ndarray] | None = None
        self.run = self.silent = 0
        if hasattr(self.is_speech, "reset"):
            self.is_speech.reset()

    def feed(self, block: np.ndarray) -> list:
        self.buf = np.concatenate([self.buf, np.asarray(block, np.float32).reshape(-1)])
        events = []
        while len(self.buf) >= self.frame:
            frame, self.buf = self.buf[:self.frame], self.buf[self.frame:]
            events += self._step(frame)
        return events

    def _step(self, frame: np.ndarray) -> list:
        voiced = self.is_speech(frame)
        if self.turn is None:
            self.pre.append(frame)
            self.run = self.run + 1 if voiced else 0
            if self.run < self.start_n:
                return []
            self.turn, self.silent = list(self.pre), 0
            self.pre.clear()
            return ["start"]
        self.turn.append(frame)
        self.silent = 0 if voiced else self.silent + 1
        if self.silent < self.end_n and len(self.turn) < self.max_n:
            return []
        audio, self.turn, self.run = np.concatenate(self.turn), None, 0
        return [audio]


# ---------------------------------------------------------------------------------------------- display
class Window:
    """Shows the reply's frames in step with the speech (``show`` one RGB frame; called on the main thread)."""

    def __init__(self, show: Callable[[np.ndarray], None]):
        self.show = show
        self.frames: list[np.ndarray] = []
        self.shown = -1
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self.frames, self.shown = [], -1

    def push(self, images: list[np.ndarray]) -> None:
        """New frames of the reply (from the worker thread)."""
        with self._lock:
            self.frames += images

    def pump(self, t_s: float) -> None:
        """Show the frame at ``t_s`` seconds of the reply (the last one made, if it is not made yet)."""
        with self._lock:
            i = min(int(t_s * FPS), len(self.frames) - 1)
            frame = self.frames[i] if i > self.shown else None
            if frame is not None:
                self.shown = i
        if frame is not None:
            self.show(frame)


def has_display() -> bool:
    """A desktop to open a window on: Windows / macOS, or X11 / Wayland with their variable set."""
    import os

    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_window(size: int) -> tuple[Window | None, str]:
    """(a matplotlib window for the avatar, or None, and a line saying why / where)."""
    if not has_display():
        return None, "no display: the avatar is written as mp4 files only"
    try:
        import matplotlib.pyplot as plt

        if plt.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
            return None, f"matplotlib has no window toolkit ({plt.get_backend()}): mp4 files only"
        fig, ax = plt.subplots(figsize=(4, 4), num="A²-LLM")
        ax.axis("off")
        image = ax.imshow(np.zeros((size, size, 3), np.uint8))
        plt.show(block=False)
    except Exception as e:                           # noqa: BLE001 (no toolkit, display refused)
        return None, f"could not open a window ({e}): mp4 files only"

    def show(frame: np.ndarray) -> None:
        image.set_data(frame)
        fig.canvas.draw_idle()
        plt.pause(0.001)

    return Window(show), "the avatar is shown in a window (and written as mp4 files)"


# -------------------------------------------------------------------------------------------------- turns
class Reply:
    """One avatar reply, generated on a worker thread; speech goes to the speaker, frames to the window."""

    def __init__(self, session: ChatSession, speaker: Speaker | None, window: Window | None,
                 text: str | None = None, audio: np.ndarray | None = None):
        self.speaker, self.window = speaker, window
        self.epoch = speaker.new_turn() if speaker is not None else 0
        if window is not None:
            window.clear()
        self.final: TurnUpdate | None = None
        self.error: Exception | None = None
        self.cut = False                             # barge-in happened during this reply
        self.reported = False
        self.started = time.perf_counter()
        self.thread = threading.Thread(target=self._run, args=(session, text, audio), name="reply", daemon=True)
        self.thread.start()

    def _play(self, pcm: np.ndarray, sample_rate: int) -> None:
        self.speaker.play(pcm, sample_rate, self.epoch)

    def _run(self, session: ChatSession, text: str | None, audio: np.ndarray | None) -> None:
        try:
            for update in session.respond(text=text, audio=audio,
                                          on_audio=self._play if self.speaker is not None else None,
                                          on_frames=self.window.push if self.window is not None else None):
                self.final = update
        except Exception as e:                       # noqa: BLE001 (reported on the main thread)
            self.error = e

    def done(self) -> bool:
        return not self.thread.is_alive()

    def playing(self) -> bool:
        return self.speaker is not None and self.epoch == self.speaker.epoch and self.speaker.busy()

    def clock_s(self) -> float:
        """Seconds into the reply: the speech played so far, or wall time without a speaker."""
        if self.speaker is not None and self.epoch == self.speaker.epoch:
            return self.speaker.position_s
        return time.perf_counter() - self.started


def format_metrics(m: dict) -> str:
    """"TTFT 43 ms · TTFA 452 ms · RTF 0.53 · 2.6 s of speech" (– for a figure the turn never reached)."""
    def ms(v):
        return "–" if v is None or not math.isfinite(v) else f"{v:.0f} ms"

    rtf = "–" if not math.isfinite(m["rtf"]) else f"{m['rtf']:.2f}"
    return f"TTFT {ms(m['ttft_ms'])} · TTFA {ms(m['ttfa_ms'])} · RTF {rtf} · {m['speech_s']:.1f} s of speech"


@dataclass
class DesktopChat:
    """The desktop conversation: a :class:`ChatSession`, this machine's audio devices and an output folder.

    ``sd``: the sounddevice module (None: loaded by :func:`_sounddevice` when needed; tests pass a fake)."""

    session: ChatSession
    out: Path = OUTPUT_ROOT / "desktop"
    sd: object = None
    mic: str | None = None
    speaker_device: str | None = None
    vad: str = "auto"
    barge_in: bool = True
    window: Window | None = None
    results: list[dict] = field(default_factory=list)       # per reply: metrics, video, motion, cut
    current: Reply | None = None                             # the reply running or playing (voice mode)
    stamp: str = field(default_factory=lambda: datetime.now().strftime("%Y%m%d-%H%M%S"))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DesktopChat":
        window = None
        if not args.no_window:
            window, line = open_window(384)
            print(line)
        session = ChatSession(checkpoint=args.checkpoint, head=args.head, voice=getattr(args, "voice", None))
        return cls(session, out=Path(args.out), mic=args.device,
                   speaker_device=args.speaker, vad=args.vad, barge_in=not args.no_barge_in, window=window)

    # ------------------------------------------------------------------------------------------ set-up
    def _audio(self, required: bool):
        """The sounddevice module; None (with a note) when playback is optional and it cannot be loaded."""
        if self.sd is None:
            try:
                self.sd = _sounddevice()
            except DesktopError as e:
                if required:
                    raise
                print(f"note: {e}; replies are not played, only written to {self.out}")
        return self.sd

    def _open_speaker(self, sd) -> Speaker | None:
        if sd is None:
            return None
        try:
            speaker = Speaker(sd, self.speaker_device, self.session.engine.detok.sample_rate)
        except DesktopError as e:
            if self.speaker_device is not None:
                raise
            print(f"note: {e}; replies are not played, only written to {self.out}")
            return None
        print(f"speaking through {speaker.name!r} at {speaker.rate} Hz")
        return speaker

    def _load(self) -> None:
        t = time.perf_counter()
        print(f"loading {self.session.checkpoint} …", flush=True)
        try:
            self.session.engine                      # noqa: B018 (loads the model once, up front)
        except ValueError as e:                      # e.g. an unknown --voice: the message lists the voices
            raise DesktopError(str(e)) from e
        print(f"loaded in {time.perf_counter() - t:.1f} s")

    # ------------------------------------------------------------------------------------------ turns
    def _pump(self, reply: Reply | None) -> None:
        if self.window is not None and reply is not None:
            self.window.pump(reply.clock_s())

    def _wait(self, reply: Reply) -> None:
        while not reply.done():
            self._pump(reply)
            reply.thread.join(timeout=0.02)

    def _drain(self, speaker: Speaker | None, reply: Reply | None) -> None:
        """Let the reply finish playing (Ctrl-C cuts it)."""
        try:
            while speaker is not None and speaker.busy():
                self._pump(reply)
                time.sleep(0.02)
        except KeyboardInterrupt:
            speaker.stop()

    def _cut(self, reply: Reply, speaker: Speaker | None) -> None:
        """Barge-in: stop generating and drop the speech not played yet."""
        reply.cut = True
        if not reply.done():
            self.session.cancel()
        if speaker is not None:
            speaker.stop()
        if self.window is not None:
            self.window.clear()
        print("(barge-in: reply cut)", flush=True)

    def _keep(self, up: TurnUpdate, n: int) -> tuple[Path | None, Path | None]:
        """Move the turn's mp4 and motion into ``out`` (the session's streaming segments are dropped)."""
        if up.video is None:
            return None, None
        self.out.mkdir(parents=True, exist_ok=True)
        video = self.out / f"{self.stamp}-turn{n:02d}.mp4"
        shutil.move(up.video, video)
        motion = None
        if up.motion is not None:
            motion = video.with_name(f"{video.stem}_motion.npz")
            shutil.move(up.motion, motion)
        folder = Path(up.video).parent
        if folder.parent == OUTPUT_ROOT and folder.name.startswith("turn-"):
            shutil.rmtree(folder, ignore_errors=True)
        return video, motion

    def _report(self, reply: Reply) -> None:
        reply.reported = True
        if reply.error is not None:
            print(f"error: {reply.error}", flush=True)
            return
        if reply.final is None:
            print("error: the turn produced nothing", flush=True)
            return
        m = reply.final.metrics or {}
        video, motion = self._keep(reply.final, len(self.results) + 1)
        self.results.append({"metrics": m, "video": video, "motion": motion, "cut": reply.cut})
        note = " · cut (barge-in)" if m.get("cancelled") else (" · playback cut" if reply.cut else "")
        print(f"avatar: {m.get('text') or '…'}")
        print(f"  {format_metrics(m)}{note}" if m else "  (no metrics)")
        print(f"  video: {video}" if video else "  (no speech, no video)", flush=True)

    # ------------------------------------------------------------------------------------------ modes
    def run_text(self, lines: TextIO, max_turns: int | None = None) -> None:
        """Typed turns, one per line of ``lines``, until EOF / Ctrl-C at the prompt (or ``max_turns``)."""
        sd = self._audio(required=False)
        self._load()
        speaker = self._open_speaker(sd)
        print("type a message and press Enter (Ctrl-C during a reply cuts it; Ctrl-C or Ctrl-D here quits)")
        try:
            while max_turns is None or len(self.results) < max_turns:
                print("you> ", end="", flush=True)
                try:
                    line = lines.readline()
                except KeyboardInterrupt:
                    break
                if not line:
                    break
                if not lines.isatty():                  # piped: show the turn as if it had been typed
                    print(line.rstrip("\n"))
                if line.strip():
                    self._text_turn(line.strip(), speaker)
        finally:
            print()
            if speaker is not None:
                speaker.close()

    def _text_turn(self, text: str, speaker: Speaker | None) -> None:
        reply = Reply(self.session, speaker, self.window, text=text)
        try:
            self._wait(reply)
        except KeyboardInterrupt:
            self._cut(reply, speaker)
            self._wait(reply)
        self._report(reply)
        self._drain(speaker, reply)

    def run_voice(self, max_turns: int | None = None) -> None:
        """Hands-free turns from the microphone until Ctrl-C (or ``max_turns`` replies)."""
        sd = self._audio(required=True)
        mic = Microphone(sd, self.mic)                  # no microphone: fails here, before the model loads
        is_speech, vad_line = make_vad(self.vad)
        detector = TurnDetector(mic.rate, is_speech)
        self._load()
        speaker = self._open_speaker(sd)
        print(f"listening on {mic.name!r} at {mic.rate} Hz; end of turn: {vad_line}; barge-in "
              f"{'on (use headphones)' if self.barge_in else 'off (the microphone is ignored while the avatar talks)'}"
              "; Ctrl-C quits", flush=True)
        self.current = None
        try:
            with mic:
                self._listen(mic, detector, speaker, max_turns)
            self._drain(speaker, self.current)
        except KeyboardInterrupt:
            print("\nbye")
            reply = self.current
            if reply is not None and not reply.done():
                self.session.cancel()
                reply.thread.join(timeout=10)
            if reply is not None and reply.done() and not reply.reported:
                self._report(reply)                  # the cut reply's mp4 still goes to --out
        finally:
            if speaker is not None:
                speaker.close()

    def _listen(self, mic: Microphone, detector: TurnDetector, speaker: Speaker | None,
                max_turns: int | None) -> None:
        """The voice loop: microphone blocks -> turns -> replies, with barge-in (the running one: ``current``)."""
        reply, waiting = None, None
        while max_turns is None or len(self.results) < max_turns:
            busy = reply is not None and (not reply.done() or reply.playing())
            block = mic.read(timeout=0.02)
            if block is not None and busy and not self.barge_in:
                detector.reset()                        # half duplex: don't hear the avatar (or answer it)
            elif block is not None:
                for ev in detector.feed(block):
                    if isinstance(ev, str):
                        if busy:
                            self._cut(reply, speaker)
                    else:
                        waiting = ev
            if reply is not None and reply.done() and not reply.reported:
                self._report(reply)
            if waiting is not None and (reply is None or reply.done()):
                turn, waiting = self._spoken(mic.rate, waiting), None
                if turn is not None:
                    reply = self.current = Reply(self.session, speaker, self.window, audio=turn)
            self._pump(reply)

    @staticmethod
    def _spoken(rate: int, samples: np.ndarray) -> np.ndarray | None:
        """The turn as 16 kHz mono for the model, or None (with the reason) when it is unusable."""
        try:
            audio = prepare_audio(rate, samples)
        except ValueError as e:
            print(f"(turn ignored: {e})", flush=True)
            return None
        print(f"you: (spoken, {len(audio) / SAMPLE_RATE:.1f} s)", flush=True)
        return audio


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The desktop-mode options of ``app.py``."""
    g = ap.add_argument_group("desktop mode (--desktop: no browser; local microphone and speaker)")
    g.add_argument("--desktop", action="store_true",
                   help="talk to the avatar through this machine's microphone and speaker instead of serving the "
                        "web app: speak, pause, and it answers aloud; each turn's mp4 goes to --out (and to a "
                        "window when there is a display). Needs libportaudio2 (apt-get install libportaudio2)")
    g.add_argument("--text", action="store_true",
                   help="desktop mode (implied) with typed turns, one per line on stdin, instead of the "
                        "microphone")
    g.add_argument("--out", default=str(OUTPUT_ROOT / "desktop"),
                   help="folder for each turn's mp4 and motion .npz (default: outputs/desktop/)")
    g.add_argument("--device", default=None,
                   help="microphone: index or part of the name, as `python -m sounddevice` lists them "
                        "(default: the system's default input)")
    g.add_argument("--speaker", default=None,
                   help="speaker: index or part of the name (default: the system's default output)")
    g.add_argument("--vad", default="auto", choices=("auto", "silero", "energy"),
                   help="how speech is told from silence to end a turn: silero-vad, an energy threshold, or auto "
                        "(silero-vad when installed; default)")
    g.add_argument("--no-barge-in", action="store_true",
                   help="ignore the microphone while the avatar speaks (for loudspeakers: otherwise the avatar's "
                        "own voice would cut it off)")
    g.add_argument("--no-window", action="store_true", help="never open a window, even with a display")
    g.add_argument("--voice", default=None,
                   help="the avatar's voice, one of its detokenizer's voices (nano: default, lower, higher, child; "
                        "full size: the reference recordings beside the token2wav weights); default: the first")


def main(args: argparse.Namespace) -> int:
    """Run desktop mode from ``app.py``'s parsed arguments; 0, or 1 after a clear error."""
    try:
        chat = DesktopChat.from_args(args)
        if args.text:
            chat.run_text(sys.stdin)
        else:
            chat.run_voice()
    except DesktopError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:                        # Ctrl-C while loading, before a loop takes over
        print("\nbye")
    return 0
