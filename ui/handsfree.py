"""Hands-free conversation: a streaming end-of-turn detector (silero-vad) and barge-in, without any UI.

The browser streams the microphone in short chunks (``gr.Audio(streaming=True)`` hands the handler ``(rate,
int16 [N] or [N, C])`` every 0.25–0.5 s, usually at 48 kHz). :class:`EndOfTurnDetector` turns those chunks into
events: :class:`SpeechStarted` once the user has been speaking for ``min_speech_ms``, and :class:`TurnEnded`, with
the turn's speech as 16 kHz float32, once ``end_silence_ms`` of silence follow it. :class:`HandsFree` is one
browser session's mode on top of it: the turns waiting for an answer, and barge-in (the user speaking while the
avatar replies cancels the reply). The Gradio wiring is in ``ui/conversation_tab.py``.

The voice activity model is silero-vad's TorchScript model, shipped inside the ``silero-vad`` pip package (no
download at run time). It scores 512-sample frames (32 ms) at 16 kHz, ~1.5 ms each on one CPU thread.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ui.conversation import MAX_SECONDS, SAMPLE_RATE

FRAME = 512                     # silero-vad's frame at 16 kHz (it accepts no other size)


# --------------------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class SpeechStarted:
    """The user has been speaking for ``min_speech_ms``. Times are stream seconds (16 kHz samples pushed / 16 k)."""

    time: float                 # when it was confirmed
    onset: float                # where the speech began (first frame over the start threshold)


@dataclass(frozen=True)
class TurnEnded:
    """A finished turn. ``audio``: [N] float32 at 16 kHz, from ``pre_roll_ms`` before the onset to ``tail_ms``
    after the last speech frame; ``start`` is the stream time of ``audio[0]``."""

    audio: np.ndarray
    time: float                 # when the end was detected
    start: float
    speech_end: float           # end of the last frame scored as speech
    reason: str                 # "silence", "max_length" (the turn hit max_turn_s) or "flush" (the stream stopped)


Event = SpeechStarted | TurnEnded


@dataclass(frozen=True)
class VADConfig:
    """End-of-turn rules. Hysteresis: a frame starts speech at ``start_threshold``; once started, frames down to
    ``end_threshold`` still count as speech, so a soft syllable does not end the turn."""

    start_threshold: float = 0.5
    end_threshold: float = 0.35
    end_silence_ms: int = 700       # silence that ends a turn
    min_speech_ms: int = 250        # speech needed before it counts (a click or a cough does not)
    pre_roll_ms: int = 300          # kept before the onset: the model fires a frame or two into the first syllable
    tail_ms: int = 200              # kept after the last speech frame: the final consonant's release
    max_turn_s: float = 30.0        # a turn is cut here even if the user keeps talking

    def __post_init__(self):
        if not 0.0 < self.end_threshold <= self.start_threshold < 1.0:
            raise ValueError(f"need 0 < end_threshold <= start_threshold < 1, got {self.end_threshold} and "
                             f"{self.start_threshold}")
        for name in ("end_silence_ms", "min_speech_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("pre_roll_ms", "tail_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.tail_ms > self.end_silence_ms:
            raise ValueError(f"tail_ms ({self.tail_ms}) cannot exceed end_silence_ms ({self.end_silence_ms})")
        if not self.min_speech_ms / 1000 < self.max_turn_s <= MAX_SECONDS:
            raise ValueError(f"max_turn_s must be in ({self.min_speech_ms / 1000}, {MAX_SECONDS}] s (the longest "
                             f"turn the model takes), got {self.max_turn_s}")


def _samples(ms: float) -> int:
    return int(round(ms * SAMPLE_RATE / 1000))


def _tail(x: np.ndarray, n: int) -> np.ndarray:
    """The last n samples of x (none for n = 0, where x[-0:] would be all of it)."""
    return x[max(0, len(x) - n):] if n > 0 else x[:0]


# ------------------------------------------------------------------------------------------ audio in
def chunk_to_mono(sample_rate: int, chunk: np.ndarray) -> np.ndarray:
    """One streamed chunk -> [N] float64 mono in [-1, 1] at its own rate (may be empty), or a clear ValueError.

    Follows :func:`ui.conversation.prepare_audio` (int scaled by the dtype's max, channels averaged, [N, C] or
    [C, N] with C <= 8) but accepts any length and clips instead of peak-normalising: a per-chunk gain would
    jump from chunk to chunk."""
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 4000:
        raise ValueError(f"unusable sample rate {sample_rate!r}")
    data = np.asarray(chunk)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise ValueError(f"audio samples must be numbers, got {data.dtype}")
    scale = float(np.iinfo(data.dtype).max) if np.issubdtype(data.dtype, np.integer) else 1.0
    if data.ndim == 2:
        if data.shape[1] <= 8:
            data = data.mean(axis=1, dtype=np.float64) if data.size else np.zeros(0)
        elif data.shape[0] <= 8:
            data = data.mean(axis=0, dtype=np.float64)
        else:
            raise ValueError(f"a chunk must be [samples] or [samples, channels <= 8], got shape {data.shape}")
    elif data.ndim != 1:
        raise ValueError(f"a chunk must be [samples] or [samples, channels], got shape {data.shape}")
    data = data.astype(np.float64) / scale
    if not np.isfinite(data).all():
        raise ValueError("the audio contains NaN or infinite samples")
    return np.clip(data, -1.0, 1.0)


def _lowpass(taps: int, cutoff: float) -> np.ndarray:
    """[taps] Kaiser(beta 5) windowed-sinc low-pass, unit DC gain, ``cutoff`` relative to Nyquist: what
    ``scipy.signal.firwin(taps, cutoff, window=("kaiser", 5.0))`` designs (importing scipy.signal takes ~2 s,
    which would stall the first streamed chunk)."""
    m = np.arange(taps) - (taps - 1) / 2
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 5.0)
    return h / h.sum()


class StreamResampler:
    """Chunked resampling to 16 kHz that gives, sample for sample, what ``scipy.signal.resample_poly`` gives on
    the whole signal (same Kaiser-windowed FIR), so chunk boundaries leave no clicks in the turn's audio.

    Output m is the polyphase sum over input samples up to (m*down + half)//up; it is emitted as soon as those
    have arrived (a look-ahead of ~10 input samples), and the last T inputs are kept as history."""

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE):
        g = math.gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.rate_in = int(rate_in)
        self.reset()
        if self.up == self.down:               # already 16 kHz: passed through
            return
        self.half = 10 * max(self.up, self.down)
        h = _lowpass(2 * self.half + 1, 1.0 / max(self.up, self.down)) * self.up
        self.taps = (len(h) - 1) // self.up + 1
        self.bank = np.zeros((self.up, self.taps))          # [phase, tap]: h[phase + tap * up]
        for p in range(self.up):
            part = h[p::self.up]
            self.bank[p, :len(part)] = part

    def reset(self) -> None:
        self.history = np.zeros(0)     # the input samples still needed, from absolute index self.first
        self.first = 0
        self.received = 0              # input samples so far
        self.emitted = 0               # output samples so far

    def push(self, x: np.ndarray) -> np.ndarray:
        """[N] float at rate_in -> [M] float32 at 16 kHz (M ~ N * up / down, less the look-ahead)."""
        if self.up == self.down:
            return np.asarray(x, np.float32)
        self.history = np.concatenate([self.history, x])
        self.received += len(x)
        end = max(self.emitted, -(-(self.up * self.received - self.half) // self.down))    # ceil division
        m = np.arange(self.emitted, end)
        q = m * self.down + self.half
        idx = (q // self.up)[:, None] - np.arange(self.taps)[None, :]        # absolute input index per tap
        vals = np.where(idx >= 0, self.history[np.clip(idx - self.first, 0, None)], 0.0)
        out = np.einsum("mt,mt->m", self.bank[q % self.up], vals)
        self.emitted = end
        keep = max(0, (end * self.down + self.half) // self.up - self.taps + 1)   # oldest input still needed
        if keep > self.first:
            self.history = self.history[keep - self.first:]
            self.first = keep
        return out.astype(np.float32)


# ------------------------------------------------------------------------------------------ the model
def load_vad_model():
    """A fresh silero-vad TorchScript model (from inside the pip package: no network).

    Each detector needs its own: the model carries its recurrent state from one frame to the next."""
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as e:
        raise RuntimeError("hands-free mode needs silero-vad: `pip install silero-vad`") from e
    finally:
        torch.set_num_threads(threads)      # importing silero_vad sets 1 thread for the whole process
    model = load_silero_vad(onnx=False)     # onnx=True would need onnxruntime; TorchScript runs on torch alone
    # TorchScript optimises on its first two calls (~150 ms): do them now, not on the user's first chunk
    with torch.inference_mode():
        for _ in range(2):
            model(torch.zeros(1, FRAME), SAMPLE_RATE)
    model.reset_states()
    return model


# ------------------------------------------------------------------------------------------ detector
class EndOfTurnDetector:
    """Streaming end-of-turn detection: ``push(rate, chunk)`` -> events (see the module docstring).

    State (all reset by :meth:`reset`): the resampler, the < 512-sample remainder, the model's recurrent state,
    the pre-roll while idle, and the turn being collected ("onset": speech seen but shorter than min_speech_ms;
    "speech": confirmed)."""

    def __init__(self, config: VADConfig | None = None, model=None):
        self.cfg = config or VADConfig()
        self._model = model
        self.reset()

    @property
    def model(self):
        if self._model is None:
            self._model = load_vad_model()
        return self._model

    def reset(self) -> None:
        if self._model is not None:
            self._model.reset_states()
        self._resampler: StreamResampler | None = None
        self._rest = np.zeros(0, np.float32)           # resampled samples not yet making a whole frame
        self.position = 0                               # 16 kHz samples scored so far (the stream clock)
        self._idle()
        self._preroll = np.zeros(0, np.float32)

    def _idle(self) -> None:
        self.state = "idle"
        self._turn: list[np.ndarray] = []
        self._turn_start = self._speech = self._last_speech_end = 0

    @property
    def time(self) -> float:
        """Seconds of 16 kHz audio scored so far."""
        return self.position / SAMPLE_RATE

    def speaking(self) -> bool:
        """True while the user is in confirmed speech (the signal for barge-in)."""
        return self.state == "speech"

    def push(self, sample_rate: int, chunk: np.ndarray) -> list[Event]:
        """Feed one chunk ([N] or [N, C], int or float, any rate >= 4 kHz); returns the events it completed."""
        mono = chunk_to_mono(sample_rate, chunk)
        if self._resampler is None or self._resampler.rate_in != sample_rate:
            self._resampler = StreamResampler(sample_rate)      # a new microphone: start its filter afresh
        audio = np.concatenate([self._rest, self._resampler.push(mono)])
        n = len(audio) // FRAME * FRAME
        self._rest = audio[n:]
        events = []
        for i in range(0, n, FRAME):
            ev = self._frame(audio[i:i + FRAME])
            if ev is not None:
                events.append(ev)
        return events

    def flush(self) -> list[Event]:
        """The stream stopped: a confirmed turn ends now (an unconfirmed onset is dropped)."""
        events = [self._end("flush")] if self.state == "speech" else []
        self._idle()
        return events

    def _prob(self, frame: np.ndarray) -> float:
        import torch

        with torch.inference_mode():
            return float(self.model(torch.from_numpy(frame)[None], SAMPLE_RATE))

    def _frame(self, frame: np.ndarray) -> Event | None:
        cfg = self.cfg
        p = self._prob(frame)
        start = self.position
        self.position += FRAME
        if self.state == "idle":
            if p < cfg.start_threshold:
                self._preroll = _tail(np.concatenate([self._preroll, frame]), _samples(cfg.pre_roll_ms))
                return None
            self.state = "onset"
            self._turn = [self._preroll, frame]
            self._turn_start = start - len(self._preroll)
            self._speech, self._last_speech_end = FRAME, self.position
            return None
        self._turn.append(frame)
        if p >= cfg.end_threshold:                     # hysteresis: inside a turn the lower threshold holds
            self._speech += FRAME
            self._last_speech_end = self.position
        silence = self.position - self._last_speech_end
        if self.state == "onset":
            if self._speech >= _samples(cfg.min_speech_ms):
                self.state = "speech"
                return SpeechStarted(time=self.time, onset=(self._turn_start + len(self._turn[0])) / SAMPLE_RATE)
            if silence >= _samples(cfg.end_silence_ms):          # a blip: back to listening
                self._preroll = _tail(np.concatenate(self._turn), _samples(cfg.pre_roll_ms))
                self._idle()
            return None
        if silence >= _samples(cfg.end_silence_ms):
            return self._end("silence")
        if self.position - self._turn_start >= cfg.max_turn_s * SAMPLE_RATE:
            return self._end("max_length")
        return None

    def _end(self, reason: str) -> TurnEnded:
        cfg = self.cfg
        audio = np.concatenate(self._turn)
        cut = audio.shape[0] if reason == "max_length" else \
            min(audio.shape[0], self._last_speech_end + _samples(cfg.tail_ms) - self._turn_start)
        ev = TurnEnded(audio=audio[:cut].astype(np.float32), time=self.time, start=self._turn_start / SAMPLE_RATE,
                       speech_end=self._last_speech_end / SAMPLE_RATE, reason=reason)
        # what followed the speech is the next turn's pre-roll
        self._preroll = _tail(audio, _samples(cfg.pre_roll_ms))
        self._idle()
        return ev


# ------------------------------------------------------------------------------------------ the mode
@dataclass
class Feed:
    """What one chunk did: turns that ended (now waiting in :attr:`HandsFree.pending`), whether the user's voice
    interrupted the avatar (once per reply: its generation cancelled and/or its playback to be stopped)."""

    turns: int = 0
    barged_in: bool = False
    speaking: bool = False


@dataclass
class HandsFree:
    """One browser session's hands-free mode. Thread-safe: the stream handler, the reply and the buttons run
    on different Gradio worker threads.

    ``pending``: finished turns not yet answered ([N] float32 at 16 kHz each). A reply is "on" from
    :meth:`begin_reply` until its playback is expected to end (``end_reply(playing_for=...)``); confirmed user
    speech meanwhile is a barge-in: the running generation is cancelled (``session.cancel()``) and the feed
    says so, for the UI to stop the playback."""

    detector: EndOfTurnDetector = field(default_factory=EndOfTurnDetector)
    pending: list[np.ndarray] = field(default_factory=list)
    turns: int = 0                      # turns detected since the last reset
    barge_ins: int = 0                  # replies cut by the user's voice
    _replying: object = None            # the ChatSession whose reply is being generated (anything with .cancel())
    _playing_until: float = 0.0         # time.monotonic() when the last reply's playback should be over
    _cut: bool = False                  # the current reply was already barged in
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def feed(self, sample_rate: int, chunk: np.ndarray) -> Feed:
        """One microphone chunk ([N] or [N, C], any rate): run the detector, queue finished turns, barge in."""
        with self._lock:
            return self._after(self.detector.push(sample_rate, chunk))

    def stop(self) -> Feed:
        """The microphone stopped: a turn being spoken ends here."""
        with self._lock:
            return self._after(self.detector.flush())

    def _after(self, events: list[Event]) -> Feed:
        out = Feed(speaking=self.detector.speaking())
        for ev in events:
            if isinstance(ev, TurnEnded):
                self.pending.append(ev.audio)
                self.turns += 1
                out.turns += 1
        if not out.speaking:
            return out
        # Level- not edge-triggered: while the user keeps talking every chunk cancels again, which also covers a
        # reply that was starting during the first cancel (the engine clears its cancel flag when a turn begins).
        if self._replying is not None:
            self._replying.cancel()
        if (self._replying is not None or time.monotonic() < self._playing_until) and not self._cut:
            self._cut, out.barged_in = True, True
            self.barge_ins += 1
            self._playing_until = 0.0
        return out

    def take_turn(self) -> np.ndarray | None:
        """Every pending turn as one clip (0.2 s of silence between them, the last MAX_SECONDS), or None."""
        with self._lock:
            clips, self.pending = self.pending, []
        if not clips:
            return None
        gap = np.zeros(_samples(200), np.float32)
        audio = np.concatenate([x for c in clips for x in (gap, c)][1:])
        return audio[-int(MAX_SECONDS * SAMPLE_RATE):]

    def begin_reply(self, session) -> None:
        """``session``'s reply to the pending turn(s) starts (anything with ``.cancel()``)."""
        with self._lock:
            self._replying, self._cut = session, False

    def end_reply(self, session, playing_for: float = 0.0) -> None:
        """Its generation ended; the browser goes on playing it for about ``playing_for`` seconds."""
        with self._lock:
            if self._replying is session:
                self._replying = None
                self._playing_until = 0.0 if self._cut else time.monotonic() + playing_for

    @property
    def replying(self) -> bool:
        """A reply is being generated or, as far as we can tell, still playing."""
        return self._replying is not None or time.monotonic() < self._playing_until

    def reset(self) -> None:
        """Forget the stream and the unanswered turns (a running reply stays registered until it ends)."""
        with self._lock:
            self.detector.reset()
            self.pending, self.turns, self.barge_ins = [], 0, 0

    def status(self) -> str:
        """One line for the UI."""
        if self.detector.speaking():
            return "🎙️ hearing you…"
        if self.replying:
            return "🗣️ answering — speak to interrupt"
        return f"👂 listening · {self.turns} turn(s) · {self.barge_ins} barge-in(s)"
