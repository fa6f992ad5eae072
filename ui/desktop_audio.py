"""Desktop mode's sound: picking devices, the microphone and the speaker (sounddevice streams).

Nothing here imports sounddevice: the module is passed in (``ui.desktop._sounddevice()``, or a fake in tests)."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from a2llm.data.builder.media import resample
from ui.conversation import SAMPLE_RATE

FRAME_S = 0.032          # VAD frame: 512 samples at 16 kHz (silero-vad's window)
NO_MIC = "no microphone found: sounddevice.query_devices() lists none; use --text or plug one in"
NO_SPEAKER = "no speaker found: sounddevice.query_devices() lists no output device"


class DesktopError(RuntimeError):
    """A desktop-mode problem with a message for the user (missing library, device, bad option)."""


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
        self._items.put((epoch, resample(pcm, sample_rate, self.rate)))

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
