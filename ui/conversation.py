"""A conversation with the avatar, without any UI: turns in, streamed video segments and metrics out.

The Gradio tab (``ui/conversation_tab.py``) and the ``chat_text`` / ``chat_audio`` API endpoints are thin layers
over this, so it is tested directly. One :class:`ChatSession` per browser session: its own engine (KV cache,
dialogue), sharing the loaded model weights with the other sessions (inference only reads them).

A turn runs on three threads besides the caller's: the engine generates on one (text, speech chunks, motion
chunks), :class:`ui.media.TurnMedia` renders the motion (through the process's GL thread) and encodes segments on
two more, and the caller only hands on what is ready — a segment the moment it is written, the text a few times a
second — so generation never waits for rendering, encoding, or for Gradio handling the previous segment.
"""
from __future__ import annotations

import copy
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ui.files import new_turn_dir, prune_outputs, release
from ui.media import StreamConfig, TurnMedia, join_segments
from ui.validate import check_text

SAMPLE_RATE = 16000
MIN_SECONDS, MAX_SECONDS = 0.3, 60.0


@dataclass
class TurnUpdate:
    """What the UI shows after each step of a turn. ``segment``: a new ≥ 1 s mp4 (speech + avatar) to play."""

    segment: Path | None = None
    text: str = ""
    metrics: dict | None = None        # the turn's figures (TurnMetrics.as_dict() + "turn"), at the end
    video: Path | None = None          # the whole turn, at the end
    motion: Path | None = None         # the turn's motion (.npz with its speech), at the end
    exports: tuple[Path, ...] = ()     # the same motion as ARKit-52 .json / .csv and a .glb of the human head
    heard: str | None = None           # a spoken turn: what the model heard (its transcript), at the end


def prepare_audio(sample_rate: int, data: np.ndarray) -> np.ndarray:
    """Any microphone / upload audio -> mono float32 at 16 kHz, or a clear ValueError (nothing else changes).

    Accepts int16 / int32 / float arrays, mono or multi-channel ([N, C]), any sample rate."""
    from a2llm.data.builder.media import resample

    data = np.asarray(data)
    if data.size == 0:
        raise ValueError("the recording is empty: record or upload some speech")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise ValueError(f"audio samples must be numbers, got {data.dtype}")
    # The integer scale comes from the input's dtype, before averaging channels turns int samples into floats
    # (stereo int16 was never scaled: quiet noise passed the silence check and came back at full scale).
    scale = float(np.iinfo(data.dtype).max) if np.issubdtype(data.dtype, np.integer) else 1.0
    if data.ndim == 2:
        data = data.mean(axis=1) if data.shape[1] <= 8 else data.mean(axis=0)
    elif data.ndim != 1:
        raise ValueError(f"audio must be [samples] or [samples, channels], got shape {data.shape}")
    data = data.astype(np.float64) / scale
    if not np.isfinite(data).all():
        raise ValueError("the audio contains NaN or infinite samples")
    if not sample_rate or sample_rate < 4000:
        raise ValueError(f"unusable sample rate {sample_rate}")
    seconds = len(data) / sample_rate
    if seconds < MIN_SECONDS:
        raise ValueError(f"the recording is {1000 * seconds:.0f} ms long: say a few words (at least "
                         f"{MIN_SECONDS:.1f} s)")
    if seconds > MAX_SECONDS:
        raise ValueError(f"the recording is {seconds:.0f} s long; a turn takes at most {MAX_SECONDS:.0f} s")
    peak = np.abs(data).max()
    if peak < 1e-3:
        raise ValueError("the recording is silent: check the microphone")
    if peak > 1.0:                                   # clipped or out-of-range floats: bring into [-1, 1]
        data = data / peak
    if sample_rate != SAMPLE_RATE:
        data = resample(data, int(sample_rate), SAMPLE_RATE)
        peak = np.abs(data).max()
        if peak > 1.0:                               # the resampling filter rings past a clipped input
            data = data / peak
    return data.astype(np.float32)


def read_audio_file(path: str | Path) -> np.ndarray:
    """An uploaded audio file -> mono float32 at 16 kHz (:func:`prepare_audio`), or a clear ValueError for a file
    that is missing, empty, corrupt or not audio at all (the server and the dialogue are left as they were)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no audio file named {path.name}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name} is empty (0 bytes): upload a recording")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        reason = str(e).replace(str(path), path.name)         # libsndfile names the file by its server path
        raise ValueError(f"{path.name} is not a readable audio file (WAV, FLAC, OGG or MP3): {reason}") from e
    return prepare_audio(sr, data)


@lru_cache(maxsize=4)
def load_parts(checkpoint: str):
    """(model, text tokenizer, detokenizer) of a checkpoint, loaded once per process and shared by sessions."""
    from a2llm.lalm.detokenizer import load_detokenizer
    from a2llm.model import A2LLM, load_checkpoint_tokenizer

    model = A2LLM.from_pretrained(checkpoint)
    model.merge_lora()                    # once, for every session's optimized engine
    return model, load_checkpoint_tokenizer(checkpoint), load_detokenizer(checkpoint)


@lru_cache(maxsize=16)
def voiced_detokenizer(checkpoint: str, voice: str | None = None):
    """The checkpoint's shared detokenizer (:func:`load_parts`) in ``voice`` (None: its default voice), sharing
    the weights; a ValueError lists the voices for an unknown name."""
    detok = load_parts(checkpoint)[2]
    return detok.with_voice(voice or None)


def voice_choices(checkpoint: str) -> list[str]:
    """The voices of a checkpoint's detokenizer, the default first (loads the checkpoint once, as sessions do);
    ``["default"]`` when it cannot be loaded (a turn then reports why)."""
    try:
        return load_parts(checkpoint)[2].voices()
    except (OSError, ValueError, RuntimeError, ImportError):
        return ["default"]


@lru_cache(maxsize=8)
def _head(name: str):
    from a2llm.head import load_head

    return load_head(name)



SPOKEN = "🎤"
TEXT_EVERY_S = 0.25        # the reply's text reaches the caller at most this often (each update re-draws the page)


def spoken_entry(heard: str | None) -> str:
    """The dialogue's line for a spoken turn: its transcript once the model has heard it."""
    return f"{SPOKEN} {heard}" if heard else f"{SPOKEN} …"


@dataclass
class ChatSession:
    """One user's dialogue with the avatar.

    ``stream``: how replies are cut into streamed segments (:class:`ui.media.StreamConfig`)."""

    checkpoint: str = "checkpoints/a2llm-nano"
    head: str = "open"
    size: int = 384
    max_new_tokens: int = 800
    voice: str | None = None        # the detokenizer's voice (None: the default); a change applies from the next turn
    stream: StreamConfig = field(default_factory=StreamConfig)
    history: list[dict] = field(default_factory=list)        # chat messages {"role", "content"}
    turns: list[dict] = field(default_factory=list)           # every turn's metrics
    turn_count: int = 0                                       # turns started (names the downloads: turn-03.mp4)
    _engine: object = None
    _engine_checkpoint: str | None = None      # the checkpoint the engine was built from (its voices' weights)
    _worker: threading.Thread | None = None    # the engine thread of the turn in progress
    _turn_cancel: threading.Event | None = None  # set by cancel(): the turn in progress stops (even one just begun)

    @property
    def engine(self):
        if self._engine is None or self._engine_checkpoint != self.checkpoint:
            from a2llm.engine import Engine, EngineConfig

            model, tok, _ = load_parts(self.checkpoint)
            detok = voiced_detokenizer(self.checkpoint, self.voice)
            if hasattr(detok, "chunk_schedule"):        # speech chunks end where the streamed segments end
                detok = copy.copy(detok)                  # the shared one (weights shared) keeps its own schedule
                detok.chunk_schedule = tuple(min(c, detok.chunk_tokens)
                                             for c in self.stream.speech_chunks(detok.token_rate))
            self._engine_checkpoint = self.checkpoint
            self._engine = Engine(model, tok, detok, EngineConfig(optimized=True, max_new_tokens=self.max_new_tokens))
            self.history, self.turns = [], []          # a new model starts a new dialogue
        return self._engine

    def reset(self) -> None:
        self._wait()
        self.history, self.turns = [], []
        if self._engine is not None:
            self._engine.reset()

    def cancel(self) -> None:
        """Stop the turn in progress (barge-in), also one whose engine has not started decoding yet."""
        if self._turn_cancel is not None:
            self._turn_cancel.set()
        if self._engine is not None:
            self._engine.cancel()

    def _wait(self, timeout: float = 60.0) -> None:
        """A turn still running (its caller went away) is stopped before the next one touches the engine."""
        worker = self._worker
        if worker is not None and worker.is_alive():
            self.cancel()
            worker.join(timeout)
            if worker.is_alive():
                raise RuntimeError("the previous reply is still being stopped; try again in a moment")

    def respond(self, text: str | None = None, audio: np.ndarray | None = None,
                on_audio: Callable[[np.ndarray, int], None] | None = None,
                on_frames: Callable[[list[np.ndarray]], None] | None = None) -> Iterator[TurnUpdate]:
        """Run one turn (typed ``text`` or 16 kHz ``audio``), yielding segments as they are ready.

        The first update (empty) comes as soon as the turn is accepted and its engine thread started; from then on
        :meth:`cancel` stops it. A refused turn raises ValueError and leaves the dialogue as it was: empty or
        over-long text or an unknown voice before that first update, a turn the context cannot hold (the engine's
        refusal) after it. ``on_audio(pcm, sample_rate)`` (engine thread) and ``on_frames(images)`` (render
        thread), optional, get each speech chunk and each batch of rendered frames as soon as they exist: live
        playback and display (desktop mode)."""
        if (text is None) == (audio is None):
            raise ValueError("a turn is either typed text or recorded audio")
        if text is not None:
            text = check_text(text)
        self._wait()
        engine = self.engine
        engine.detok = voiced_detokenizer(self._engine_checkpoint, self.voice)   # this turn's voice, same weights
        head = _head(self.head)
        prune_outputs()
        out_dir = new_turn_dir()
        events: queue.Queue = queue.Queue()
        media = TurnMedia(head, self.size, out_dir, engine.detok.sample_rate, self.stream, events.put, on_frames)
        speech: list[np.ndarray] = []
        motion: list[np.ndarray] = []
        self._turn_cancel = stop = threading.Event()
        worker = threading.Thread(target=self._generate, name="engine", daemon=True,
                                  args=(engine, text, audio, events, media, speech, motion, on_audio, stop))
        self._worker = worker
        n_history = len(self.history)
        self.history.append({"role": "user", "content": text if text is not None else spoken_entry(None)})
        self.history.append({"role": "assistant", "content": ""})
        worker.start()
        reply, metrics, segments, began = "", None, None, False
        engine_done = media_done = False
        last_text = 0.0
        try:
            yield TurnUpdate()                              # accepted: the reply is on its way
            while not (engine_done and media_done):
                kind, value = events.get()
                if kind == "error":
                    if not began:                           # refused before anything was said: nothing changes
                        del self.history[n_history:]
                    raise value
                if kind == "text":
                    began = True
                    reply += value
                    self.history[-1]["content"] = reply.strip()
                    now = time.monotonic()
                    if now - last_text >= TEXT_EVERY_S:
                        last_text = now
                        yield TurnUpdate(text=reply)
                elif kind == "segment":
                    began = True
                    yield TurnUpdate(segment=value, text=reply)
                elif kind == "metrics":
                    began, metrics = True, value
                elif kind == "engine_done":
                    engine_done = True
                elif kind == "media_done":
                    media_done, segments = True, value
            self.turn_count += 1
            stem = out_dir / f"turn-{self.turn_count:02d}"
            pcm = np.concatenate(speech) if speech else np.zeros(0, np.float32)
            frames = np.concatenate(motion) if motion else np.zeros((0, 58), np.float32)
            video = motion_file = None
            exports: tuple[Path, ...] = ()
            if segments:
                video = join_segments(segments, stem.with_suffix(".mp4"), pcm, engine.detok.sample_rate,
                                      len(frames))
                from a2llm.motion.io import save_motion

                motion_file = stem.with_name(stem.name + "_motion.npz")
                save_motion(motion_file, frames, audio=pcm, sample_rate=engine.detok.sample_rate)
                exports = _exports(frames, stem, self.head)
            heard = (metrics or {}).get("heard")
            if audio is not None:
                self.history[n_history]["content"] = spoken_entry(heard)
            self.history[-1]["content"] = (metrics or {}).get("text") or reply.strip() or "…"
            if metrics is not None:
                metrics["turn"] = self.turn_count
                self.turns.append(metrics)
            yield TurnUpdate(text=reply, metrics=metrics, video=video, motion=motion_file, exports=exports,
                             heard=heard)
        finally:
            if worker.is_alive():                           # the caller stopped listening: stop the reply
                self.cancel()
            media.close()
            worker.join(60.0)
            release(out_dir)
            if not began:
                shutil.rmtree(out_dir, ignore_errors=True)

    @staticmethod
    def _generate(engine, text, audio, events, media, speech, motion, on_audio, stop) -> None:
        """The engine thread: one turn's events into ``events`` (text, metrics) and ``media`` (speech, motion).
        ``stop``: the session's cancel for this turn, passed on to the engine after each event (a cancel that came
        before the engine began its turn would otherwise be cleared by it)."""
        from a2llm.engine import AudioChunk, MotionChunk, TextDelta, TurnMetrics

        try:
            for ev in engine.turn(audio=audio, text=text):
                if stop.is_set():
                    engine.cancel()
                if isinstance(ev, TextDelta):
                    events.put(("text", ev.text))
                elif isinstance(ev, AudioChunk):
                    speech.append(ev.pcm)
                    if on_audio is not None:
                        on_audio(ev.pcm, ev.sample_rate)
                    media.add_audio(ev.pcm)
                elif isinstance(ev, MotionChunk):
                    motion.append(ev.frames)
                    media.add_motion(ev.frames)
                elif isinstance(ev, TurnMetrics):
                    events.put(("metrics", ev.as_dict()))
        except Exception as e:                             # noqa: BLE001 (raised again by the caller's thread)
            events.put(("error", e))
        finally:
            media.finish()
            events.put(("engine_done", None))


def _exports(motion: np.ndarray, stem: Path, head: str) -> tuple[Path, ...]:
    """The turn's motion as ARKit-52 JSON / CSV and a .glb (the human head of the session's identity, or the
    default one for the open head and FLAME); an export that fails costs the turn nothing but its downloads."""
    from a2llm.head import human_identity
    from a2llm.motion.export import export_all

    try:
        return tuple(export_all(motion, stem, identity=human_identity(str(head))))
    except (OSError, ValueError) as e:
        import warnings

        warnings.warn(f"motion export failed: {e}", stacklevel=2)
        return ()


#: What the API's metrics hold (TurnMetrics' figures that mean something to a caller).
API_METRICS = ("ttft_ms", "ttfa_ms", "rtf", "speech_s", "text", "heard", "turn")


def chat_text(text: str, checkpoint: str = "checkpoints/a2llm-nano", head: str = "open",
              voice: str | None = None) -> tuple[str, dict]:
    """One typed turn in a fresh dialogue -> (the turn's mp4 path ``turn-01.mp4``, metrics {ttft_ms, ttfa_ms,
    rtf, speech_s, text, heard, turn}); ``voice``: one of :func:`voice_choices` (None: the default)."""
    return _one_turn(ChatSession(checkpoint=checkpoint, head=head, voice=voice), text=check_text(text))


def chat_audio(path: str | Path, checkpoint: str = "checkpoints/a2llm-nano", head: str = "open",
               voice: str | None = None) -> tuple[str, dict]:
    """One spoken turn (an audio file) in a fresh dialogue -> (mp4 path, metrics with ``heard``, the transcript),
    as :func:`chat_text`; a file without speech is refused (:func:`ui.validate.check_speech`)."""
    from ui.validate import check_speech

    audio = read_audio_file(path)
    check_speech(audio)
    return _one_turn(ChatSession(checkpoint=checkpoint, head=head, voice=voice), audio=audio)


def _one_turn(session: ChatSession, text: str | None = None, audio: np.ndarray | None = None) -> tuple[str, dict]:
    last = None
    for last in session.respond(text=text, audio=audio):
        pass
    if last is None or last.video is None:
        raise RuntimeError("the model produced no speech for this message")
    m = last.metrics
    return str(last.video), {k: m.get(k) for k in API_METRICS}


def warm_up(checkpoint: str, head: str = "open", size: int = 384) -> float:
    """One throwaway typed turn, so that the first user's turn does not pay for the first-call costs (model load,
    renderer and EGL start, the motion decoder's and ffmpeg's first runs: ~10 s here); its files are deleted.
    Returns the seconds it took."""
    t = time.perf_counter()
    session = ChatSession(checkpoint=checkpoint, head=head, size=size, max_new_tokens=120)
    folders = set()
    for up in session.respond(text="Hello."):
        for p in (up.segment, up.video, up.motion):
            if p is not None:
                folders.add(Path(p).parent)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return time.perf_counter() - t
