"""A conversation with the avatar, without any UI: turns in, streamed video segments and metrics out.

The Gradio tab (``ui/conversation_tab.py``) and the ``chat_text`` API endpoint are thin layers over this, so it is
tested directly. One :class:`ChatSession` per browser session: its own engine (KV cache, dialogue), sharing the
loaded model weights with the other sessions (inference only reads them).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ui.files import new_output

SAMPLE_RATE = 16000
MIN_SECONDS, MAX_SECONDS = 0.3, 60.0


@dataclass
class TurnUpdate:
    """What the UI shows after each step of a turn. ``segment``: a new ≥ 1 s mp4 (speech + avatar) to play."""

    segment: Path | None = None
    text: str = ""
    metrics: dict | None = None
    video: Path | None = None          # the whole turn, at the end
    motion: Path | None = None         # the turn's motion (.npz with its speech), at the end
    exports: tuple[Path, ...] = ()     # the same motion as ARKit-52 .json / .csv and a .glb of the human head


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
        raise ValueError(f"no audio file at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name} is empty (0 bytes): upload a recording")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f"{path.name} is not a readable audio file (WAV, FLAC, OGG or MP3): {e}") from e
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


@dataclass
class ChatSession:
    """One user's dialogue with the avatar."""

    checkpoint: str = "checkpoints/a2llm-nano"
    head: str = "open"
    size: int = 384
    max_new_tokens: int = 800
    voice: str | None = None        # the detokenizer's voice (None: the default); a change applies from the next turn
    history: list[dict] = field(default_factory=list)        # chat messages {"role", "content"}
    turns: list[dict] = field(default_factory=list)           # every turn's metrics
    _engine: object = None
    _engine_checkpoint: str | None = None      # the checkpoint the engine was built from (its voices' weights)

    @property
    def engine(self):
        if self._engine is None:
            from a2llm.engine import Engine, EngineConfig

            model, tok, _ = load_parts(self.checkpoint)
            detok = voiced_detokenizer(self.checkpoint, self.voice)
            self._engine_checkpoint = self.checkpoint
            self._engine = Engine(model, tok, detok, EngineConfig(optimized=True, max_new_tokens=self.max_new_tokens))
        return self._engine

    def reset(self) -> None:
        self.history, self.turns = [], []
        if self._engine is not None:
            self._engine.reset()

    def cancel(self) -> None:
        if self._engine is not None:
            self._engine.cancel()

    def respond(self, text: str | None = None, audio: np.ndarray | None = None,
                on_audio: Callable[[np.ndarray, int], None] | None = None,
                on_frames: Callable[[list[np.ndarray]], None] | None = None) -> Iterator[TurnUpdate]:
        """Run one turn (typed ``text`` or 16 kHz ``audio``), yielding segments as they are ready.

        ``on_audio(pcm, sample_rate)`` and ``on_frames(images)`` (optional) get each speech chunk and each batch
        of rendered frames as soon as they exist: live playback and display (desktop mode)."""
        from a2llm.engine import AudioChunk, MotionChunk, TextDelta, TurnMetrics
        from renderer.render import render_frames
        from renderer.video import SegmentWriter, write_mp4

        engine = self.engine
        engine.detok = voiced_detokenizer(self._engine_checkpoint, self.voice)   # this turn's voice, same weights
        head = _head(self.head)
        out_dir = new_output("", "turn")
        writer = SegmentWriter(out_dir, sample_rate=engine.detok.sample_rate)
        frames_all, motion_all, audio_all, reply = [], [], [], ""
        self.history.append({"role": "user", "content": text if text is not None else "🎤 (spoken turn)"})
        self.history.append({"role": "assistant", "content": ""})
        metrics = None
        for ev in engine.turn(audio=audio, text=text):
            segments = []
            if isinstance(ev, TextDelta):
                reply += ev.text
                self.history[-1]["content"] = reply.strip()
            elif isinstance(ev, AudioChunk):
                audio_all.append(ev.pcm)
                if on_audio is not None:
                    on_audio(ev.pcm, ev.sample_rate)
                segments = writer.add_audio(ev.pcm)
            elif isinstance(ev, MotionChunk):
                motion_all.append(ev.frames)
                verts = head.vertices(ev.frames)
                images = render_frames(head, verts, self.size)
                frames_all += images
                if on_frames is not None:
                    on_frames(images)
                segments = writer.add_frames(images)
            elif isinstance(ev, TurnMetrics):
                metrics = ev.as_dict()
            for seg in segments:
                yield TurnUpdate(segment=seg, text=reply)
            if isinstance(ev, TextDelta):
                yield TurnUpdate(text=reply)
        for seg in writer.finish():
            yield TurnUpdate(segment=seg, text=reply)
        speech = np.concatenate(audio_all) if audio_all else np.zeros(0, np.float32)
        motion = np.concatenate(motion_all) if motion_all else np.zeros((0, 58), np.float32)
        video = motion_file = None
        exports: tuple[Path, ...] = ()
        if frames_all:
            video = out_dir / "turn.mp4"
            write_mp4(video, frames_all, audio=speech, sample_rate=engine.detok.sample_rate)
            from a2llm.motion.io import save_motion

            motion_file = out_dir / "turn_motion.npz"
            save_motion(motion_file, motion, audio=speech, sample_rate=engine.detok.sample_rate)
            exports = _exports(motion, out_dir / "turn", self.head)
        self.history[-1]["content"] = (metrics or {}).get("text") or reply.strip() or "…"
        if metrics is not None:
            self.turns.append(metrics)
        yield TurnUpdate(text=reply, metrics=metrics, video=video, motion=motion_file, exports=exports)


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


def chat_text(text: str, checkpoint: str = "checkpoints/a2llm-nano", head: str = "open",
              voice: str | None = None) -> tuple[str, str]:
    """One typed turn in a fresh dialogue -> (the turn's mp4 path, metrics JSON with ttft_ms, ttfa_ms, rtf);
    ``voice``: one of :func:`voice_choices` (None: the default)."""
    if not text or not text.strip():
        raise ValueError("type a message first")
    return _one_turn(ChatSession(checkpoint=checkpoint, head=head, voice=voice), text=text)


def chat_audio(path: str | Path, checkpoint: str = "checkpoints/a2llm-nano", head: str = "open",
               voice: str | None = None) -> tuple[str, str]:
    """One spoken turn (an audio file) in a fresh dialogue -> (mp4 path, metrics JSON), as :func:`chat_text`."""
    audio = read_audio_file(path)
    return _one_turn(ChatSession(checkpoint=checkpoint, head=head, voice=voice), audio=audio)


def _one_turn(session: ChatSession, text: str | None = None, audio: np.ndarray | None = None) -> tuple[str, str]:
    last = None
    for last in session.respond(text=text, audio=audio):
        pass
    if last is None or last.video is None:
        raise RuntimeError("the model produced no speech for this message")
    m = last.metrics
    return str(last.video), json.dumps({k: m[k] for k in ("ttft_ms", "ttfa_ms", "rtf", "speech_s", "text")})


def warm_up(checkpoint: str, head: str = "open", size: int = 384) -> float:
    """One throwaway typed turn, so that the first user's turn does not pay for the first-call costs (model load,
    renderer and EGL start, the motion decoder's and ffmpeg's first runs: ~10 s here); its files are deleted.
    Returns the seconds it took."""
    import shutil
    import time

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
