"""A turn's video, made beside the model: motion chunks are rendered and speech + frames encoded into streamed
segments on worker threads while the engine keeps generating.

Where the time of a streamed reply goes (the code path before this module; the figures are docs/BENCH.md's and
docs/RENDER.md's, on the 2-core machine):

* the first segment was 1 s (25 frames) long, so nothing could play before 25 frames were rendered and 1 s of
  speech existed: the detokenizer's first chunk (25 + 3 tokens, ~0.1-0.3 s of generation), then 25 renders at
  ~15-25 ms each (~0.4-0.6 s at 384²);
* rendering and encoding ran inline in the generator that drove the engine: while a chunk was rendered or a
  segment encoded (~0.1-0.2 s: an ffmpeg process, x264 and AAC), no token was decoded, and neither happened while
  Gradio processed the previous segment (it probes, decodes and re-muxes each one, three more ffmpeg processes:
  ~0.2-0.4 s), which it does between two steps of the generator;
* the whole turn's mp4 was encoded again from all frames at the end (~7 ms a frame), while the browser plays.

Here the engine runs on its own thread (:class:`~ui.conversation.ChatSession`), the motion is rendered on the
process's GL thread (all GL work stays on that one thread: an EGL context belongs to the thread that made it
current) fed by this module's render thread, and segments are encoded by one encoder thread (ffmpeg is its own
process, so it uses the other core). The segment schedule starts short — by default 0.4 s, 0.6 s, then 1 s, where
nano's speech chunks (10, 15, then 25 tokens) end — and the whole turn's mp4 is the segments' video joined without
re-encoding, with its speech encoded once. For the Gradio app (``container="ts"``) each segment is also muxed here
into the MPEG-TS piece the page's player plays (:class:`TsMuxer`), so Gradio has nothing left to do per segment.
"""
from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ui import trace

FPS = 25
AUDIO_RATE_OUT = 24000


@dataclass(frozen=True)
class StreamConfig:
    """How a reply is cut into streamed segments.

    Attributes:
        segments: segment lengths in seconds, the last one repeated (each a whole number of frames, ≥ 1 frame).
        preset: x264 preset of the segments (each is encoded while the reply is generated: speed first).
        container: "mp4" (standalone segments with speech, for any player) or "ts" (for the Gradio app: each
            segment also muxed here into the MPEG-TS piece Gradio's HLS player plays, speech from one AAC encoder
            for the whole reply, so that Gradio has nothing left to probe, decode or re-mux: :class:`TsMuxer`).
    """

    segments: tuple[float, ...] = (0.4, 0.6, 1.0)
    preset: str = "veryfast"
    container: str = "mp4"

    def __post_init__(self):
        if self.container not in ("mp4", "ts"):
            raise ValueError(f"container must be 'mp4' or 'ts', got {self.container!r}")
        if not self.segments or any(s * FPS < 1 - 1e-9 for s in self.segments):
            raise ValueError(f"segment lengths must be at least one frame (1/{FPS} s), got {self.segments}")

    @classmethod
    def parse(cls, text: str, **kw) -> "StreamConfig":
        """"0.4,0.6,1" -> StreamConfig(segments=(0.4, 0.6, 1.0)); a ValueError names a bad entry."""
        try:
            return cls(segments=tuple(float(s) for s in text.split(",") if s.strip()), **kw)
        except ValueError as e:
            raise ValueError(f"--segments takes seconds separated by commas, e.g. 0.4,0.6,1 ({e})") from e

    def frames(self, k: int) -> int:
        """Frames in segment k (0-based)."""
        return max(1, round(self.segments[min(k, len(self.segments) - 1)] * FPS))

    def speech_chunks(self, token_rate: float) -> tuple[int, ...]:
        """Speech tokens of the detokenizer's first chunks so that each ends where a segment does (every listed
        segment but the repeated last one): a segment then never waits for a chunk that reaches past it. The
        default (0.4, 0.6, 1) at 25 tokens/s gives (10, 15)."""
        return tuple(max(1, round(s * token_rate)) for s in self.segments[:-1])


class Segmenter:
    """Cuts frames and speech arriving in chunks of any size (and at different paces) into segments of the
    schedule: segment k is ready once its frames and the speech covering them exist. Speech sample s belongs to
    frame floor(s * fps / sample_rate): one timeline.

    Args:
        config: the segment schedule.
        sample_rate: speech rate, or None for silent video.
    """

    def __init__(self, config: StreamConfig, sample_rate: int | None, fps: int = FPS):
        self.config, self.sample_rate, self.fps = config, sample_rate, fps
        self._frames: list[np.ndarray] = []
        self._audio = np.zeros(0, np.float32)
        self.position = 0           # frames already cut into segments
        self.count = 0              # segments cut

    def _sample(self, frame: int) -> int:
        return int(round(frame * self.sample_rate / self.fps))

    def add_frames(self, frames: Sequence[np.ndarray]) -> list[tuple[list[np.ndarray], np.ndarray | None]]:
        """Queue rendered frames [H, W, 3]; returns the segments (frames, speech or None) this completed."""
        self._frames.extend(frames)
        return self._cut(final=False)

    def add_audio(self, pcm: np.ndarray) -> list[tuple[list[np.ndarray], np.ndarray | None]]:
        """Queue speech [N] float32 at ``sample_rate``; returns the segments this completed."""
        if self.sample_rate is None:
            raise ValueError("this Segmenter was made without a sample rate")
        self._audio = np.concatenate([self._audio, np.asarray(pcm, np.float32).reshape(-1)])
        return self._cut(final=False)

    def finish(self) -> list[tuple[list[np.ndarray], np.ndarray | None]]:
        """What is left: segments of the schedule, the last one shorter (speech padded with silence)."""
        return self._cut(final=True)

    def _cut(self, final: bool):
        out = []
        while self._frames:
            n = self.config.frames(self.count)
            if len(self._frames) < n:
                if not final:
                    break
                n = len(self._frames)
            audio = None
            if self.sample_rate is not None:
                need = self._sample(self.position + n) - self._sample(self.position)
                if len(self._audio) < need:
                    if not final:
                        break
                    self._audio = np.concatenate([self._audio, np.zeros(need - len(self._audio), np.float32)])
                audio, self._audio = self._audio[:need], self._audio[need:]
            out.append((self._frames[:n], audio))
            self._frames = self._frames[n:]
            self.position += n
            self.count += 1
        return out


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _wav(audio: np.ndarray, sample_rate: int, directory: Path) -> str:
    import soundfile as sf

    fd, path = tempfile.mkstemp(suffix=".wav", dir=directory)
    os.close(fd)
    sf.write(path, np.clip(audio, -1.0, 1.0), int(sample_rate), subtype="PCM_16")
    return path


def encode_segment(path: str | Path, frames: Sequence[np.ndarray], audio: np.ndarray | None = None,
                   sample_rate: int | None = None, preset: str = "veryfast") -> Path:
    """[H, W, 3] uint8 frames (+ mono speech of exactly their length) -> a standalone H.264 + AAC mp4 (written under
    a temporary name and renamed: whoever is told of the path finds a whole file). No B-frames (``zerolatency``), so
    segments join by stream copy (:func:`join_segments`) and mux into MPEG-TS unchanged."""
    from renderer.video import write_mp4

    if not len(frames):
        raise ValueError("no frames to encode")
    return write_mp4(path, frames, fps=FPS, audio=audio, sample_rate=sample_rate, num_frames=len(frames),
                     x264_params=["-preset", preset, "-tune", "zerolatency"])


def join_segments(segments: Sequence[Path], out: str | Path, audio: np.ndarray | None = None,
                  sample_rate: int | None = None, frames: int | None = None) -> Path:
    """The segments' video joined without re-encoding (ffmpeg's concat demuxer), with ``audio`` — the whole
    turn's speech, fitted to ``frames`` / 25 s — encoded once as AAC (each segment's AAC starts with its own
    encoder priming, which a stream copy would keep between segments)."""
    from renderer.video import fit_audio

    out = Path(out)
    if not segments:
        raise ValueError("no segments to join")
    listing = out.with_name(f".{out.stem}.concat.txt")
    listing.write_text("".join(f"file '{Path(s).resolve()}'\n" for s in segments))
    wav = None
    tmp = out.with_name(f".{out.stem}.tmp.mp4")
    try:
        cmd = [_ffmpeg(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
        if audio is not None:
            if frames is None or sample_rate is None:
                raise ValueError("join_segments needs frames and sample_rate with audio")
            wav = _wav(fit_audio(audio, sample_rate, frames), sample_rate, out.parent)
            cmd += ["-i", wav, "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-ar", str(AUDIO_RATE_OUT)]
        else:
            cmd += ["-map", "0:v:0"]
        # The concat demuxer places each file by its earliest timestamp, the AAC priming's (-1024 samples): the
        # video would start one AAC frame late. setts puts it back at zero (no re-encode).
        cmd += ["-c:v", "copy", "-bsf:v", "setts=pts=PTS-STARTPTS:dts=DTS-STARTDTS", "-movflags", "+faststart",
                "-f", "mp4", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"joining the turn's segments failed: {done.stderr.strip()[-400:]}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        for p in (listing, tmp, wav):
            if p and os.path.exists(p):
                os.remove(p)
    return out


#: Suffix of the file beside a pre-muxed MPEG-TS segment that gives its duration (read by :func:`premuxed`).
TS_META = ".json"


def premuxed(path) -> dict | None:
    """{"duration": s} of a segment :class:`TsMuxer` wrote (a ``.ts`` with its ``.ts.json`` beside it), else None."""
    import json

    if path is None or not str(path).endswith(".ts"):
        return None
    meta = Path(str(path) + TS_META)
    return json.loads(meta.read_text()) if meta.exists() else None


class TsMuxer:
    """A reply's MPEG-TS pieces for Gradio's HLS player, made beside generation instead of inside Gradio.

    Gradio's streamed ``gr.Video`` takes each mp4 segment and, on its own worker between two steps of the handler,
    probes it (ffprobe), decodes its audio (ffmpeg), feeds a per-stream AAC encoder and re-muxes both into MPEG-TS
    (ffmpeg): ~0.5 s for the first segment on the 2-core machine (docs/BENCH.md, ``bench_browser.py --trace``).
    Here the speech is already PCM, so the same steps shrink to feeding one AAC encoder started with the turn (its
    start-up overlaps generation) and one stream-copy mux, with Gradio's own encoder and muxer
    (``gradio.audio_stream_encoder.AacStreamEncoder``, ``gr.Video.mux_segment``).

    **A piece's picture never outruns its sound.** The AAC encoder hands out a frame (64 ms at 16 kHz) only once
    it has the samples after it, so after a segment's speech is fed its last ~0.1 s is still inside the encoder.
    Muxed as they come (Gradio's way), every piece's audio ends that much before its video, and the player, which
    waits for both tracks, stalls at each piece's end until the next piece arrives (then needs ~0.5 s to resume in
    Chromium: bench_browser.py's ``waits``). So a piece carries video only as far as its audio reaches; the frames
    beyond wait for the next piece, and the last piece takes what the encoder still holds. The encoder's priming
    frame is dropped, so speech and picture both start at zero (Gradio places it one frame before the video, a
    hole the player has to step over). Used from one thread at a time (the encoder thread), in segment order.

    Args:
        sample_rate: the speech's rate.
        preset: x264 preset of the pieces' video.
    """

    def __init__(self, sample_rate: int, preset: str = "veryfast"):
        from gradio.audio_stream_encoder import AacStreamEncoder

        self.sample_rate, self.preset = int(sample_rate), preset
        self.encoder = AacStreamEncoder(self.sample_rate, 1, "Streaming the reply's speech")
        self.aac_placed = 0         # AAC frames placed on the timeline, the dropped priming frame counted
        self.video_frames = 0       # video frames muxed so far
        self.counters: dict[int, int] = {}
        self.samples_fed = 0        # speech samples fed to the AAC encoder
        self._aac: list[bytes] = []             # taken from the encoder, not yet muxed
        self._frames: list[np.ndarray] = []     # rendered, not yet muxed

    def _take(self) -> list[bytes]:
        """The AAC frames the encoder has for what was fed. It emits frame k once it holds the samples after it, so
        at least (fed / 1024) − 2 frames must exist by now (one held back, the priming one ahead): on a loaded
        machine they come later than Gradio's short waits allow, and a piece would go out without its speech
        (its picture then waits for the next). So that many are waited for (up to 2 s), then the rest taken."""
        fed = self.samples_fed * self.encoder.output_rate / self.sample_rate
        due = int(fed // 1024) - 2 - (self.aac_placed + len(self._aac))     # minus those taken already
        frames = self.encoder.take()
        deadline = time.monotonic() + 2.0
        while len(frames) < due and time.monotonic() < deadline:
            frames += self.encoder.take(timeout=0.05)
        while more := self.encoder.take():      # the encoder emits in bursts: take until dry
            frames += more
        return frames

    def piece(self, video: Path, frames: Sequence[np.ndarray], audio: np.ndarray):
        """Add a segment's frames [H, W, 3] and its speech [N] float; returns (MPEG-TS bytes, seconds, ``video``
        — the piece's video-only mp4, written there) for what can go out now, or None when nothing can yet."""
        pcm = (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.encoder.feed(pcm)
        self.samples_fed += len(pcm) // 2
        self._add_aac(self._take())
        self._frames += list(frames)
        audio_end = (self.aac_placed - 1 + len(self._aac)) * self.encoder.frame_duration if self.aac_placed else 0.0
        n = min(len(self._frames), int(audio_end * FPS + 1e-6) - self.video_frames)
        return self._mux(video, n) if n > 0 else None

    def tail(self, video: Path):
        """End of the reply: what is left (frames and the speech the encoder still holds) as a last piece, and the
        encoder closed; (bytes, seconds, mp4 or None), or None when nothing was left."""
        self._add_aac(self.encoder.flush())
        if not self._frames and not self._aac:
            return None
        return self._mux(video, len(self._frames))

    def _add_aac(self, frames: list[bytes]) -> None:
        self._aac += frames
        if self.aac_placed == 0 and self._aac:
            self._aac, self.aac_placed = self._aac[1:], 1          # the priming frame: dropped (see above)

    def _mux(self, video: Path, n: int):
        import gradio as gr

        frames, self._frames = self._frames[:n], self._frames[n:]
        mp4 = encode_segment(video, frames, None, None, self.preset) if n else None
        aac, self._aac = self._aac, []
        fd = self.encoder.frame_duration
        data = gr.Video.mux_segment(str(mp4) if mp4 else None, "h264" if mp4 else None, b"".join(aac),
                                    self.video_frames / FPS, max(self.aac_placed - 1, 0) * fd, 0.0, self.counters)
        self.aac_placed += len(aac)
        self.video_frames += n
        return data, (n / FPS if n else len(aac) * fd), mp4

    def close(self) -> None:
        self.encoder.close()


def write_piece(path: Path, data: bytes, duration: float) -> Path:
    """A pre-muxed MPEG-TS piece and its duration beside it (the duration first: whoever sees the .ts finds both)."""
    import json

    Path(str(path) + TS_META).write_text(json.dumps({"duration": round(duration, 6)}))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


class TurnMedia:
    """Renders and encodes one reply on worker threads.

    Feed it from the engine's thread (:meth:`add_audio`, :meth:`add_motion`, then :meth:`finish`); it calls
    ``emit(("segment", path))`` for each segment as soon as it is written, in order, then ``emit(("media_done",
    paths))`` with every segment, or ``emit(("error", exception))`` once if rendering or encoding fails.

    Args:
        head: the head model (``vertices(motion [n, 58]) -> [n, V, 3]``).
        size: frame size in pixels.
        out_dir: folder for the segments ``seg_00000.mp4``, ...
        sample_rate: the speech's rate.
        config: the segment schedule.
        emit: where the events go (a queue's ``put``).
        on_frames: called with each batch of rendered frames (desktop mode's live window), on the render thread.
    """

    def __init__(self, head, size: int, out_dir: Path, sample_rate: int, config: StreamConfig,
                 emit: Callable[[tuple], None], on_frames: Callable[[list[np.ndarray]], None] | None = None):
        self.head, self.size, self.out_dir = head, int(size), Path(out_dir)
        self.config, self.emit, self.on_frames = config, emit, on_frames
        self.segmenter = Segmenter(config, sample_rate)
        self.sample_rate = sample_rate
        self.segments: list[Path] = []
        self._cut = 0               # segments cut so far (their files are named after it)
        # Started with the turn, so that the AAC encoder's start-up overlaps generation rather than the first piece.
        self.muxer = TsMuxer(sample_rate, config.preset) if config.container == "ts" else None
        self.frames = 0
        self._heard = False         # a speech chunk has arrived (for the trace's first_audio mark)
        self._inbox: queue.Queue = queue.Queue()
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self._failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)
        self._thread.start()

    # --- from the engine's thread -------------------------------------------------------------------------
    def add_audio(self, pcm: np.ndarray) -> None:
        self._inbox.put(("audio", np.asarray(pcm, np.float32)))

    def add_motion(self, frames: np.ndarray) -> None:
        self._inbox.put(("motion", np.asarray(frames, np.float32)))

    def finish(self) -> None:
        """No more input: write what is left, then report ``media_done``."""
        self._inbox.put(("end", None))

    def close(self, timeout: float = 30.0) -> None:
        """Stop (input dropped after a failure or an abandoned turn) and wait for the threads."""
        self._failed.set()
        self._inbox.put(("end", None))
        self._thread.join(timeout)
        if self.muxer is not None:
            self.muxer.close()

    # --- the render thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        from renderer.render import render_frames

        try:
            while True:
                kind, data = self._inbox.get()
                if self._failed.is_set() and kind != "end":
                    continue
                if kind == "end":
                    break
                if kind == "audio":
                    if not self._heard:
                        self._heard = True
                        trace.mark("first_audio", samples=len(data))
                    ready = self.segmenter.add_audio(data)
                else:
                    if self.frames == 0:
                        trace.mark("first_motion", frames=len(data))
                    images = render_frames(self.head, self.head.vertices(data), self.size)
                    trace.mark("rendered", frames=len(images), total=self.frames + len(images))
                    self.frames += len(images)
                    if self.on_frames is not None:
                        self.on_frames(images)
                    ready = self.segmenter.add_frames(images)
                self._submit(ready)
            if not self._failed.is_set():
                self._submit(self.segmenter.finish())
                if self.muxer is not None:
                    self._encoder.submit(self._tail)
            self._encoder.shutdown(wait=True)
            if not self._failed.is_set():
                self.emit(("media_done", list(self.segments)))
        except Exception as e:                                  # noqa: BLE001 (handed to the consumer)
            self._fail(e)
            self._encoder.shutdown(wait=False, cancel_futures=True)

    def _submit(self, ready) -> None:
        for frames, audio in ready:
            path = self.out_dir / f"seg_{self._cut:05d}.mp4"
            self._cut += 1
            if self.muxer is None:
                self.segments.append(path)
            self._encoder.submit(self._encode, path, frames, audio)

    def _encode(self, path: Path, frames, audio) -> None:
        if self._failed.is_set():
            return
        try:
            if self.muxer is None:
                encode_segment(path, frames, audio, self.sample_rate, self.config.preset)
                shown = path
            else:                       # video-only mp4 (joined into the turn's file), speech into the TS piece
                shown = self._piece(self.muxer.piece(path, frames, audio), path)
        except Exception as e:                                  # noqa: BLE001
            self._fail(e)
            return
        if shown is not None:
            trace.mark("encoded", segment=shown.name, frames=len(frames))
            self.emit(("segment", shown))

    def _piece(self, made, mp4: Path) -> Path | None:
        """A TsMuxer result written as the next ``seg_NNNNN.ts`` (its mp4 kept for the turn's file)."""
        if made is None:
            return None
        data, seconds, video = made
        if video is not None:
            self.segments.append(video)
        return write_piece(mp4.with_suffix(".ts"), data, seconds)

    def _tail(self) -> None:
        """The frames and speech still held back, as the last piece (container "ts")."""
        if self._failed.is_set():
            return
        mp4 = self.out_dir / f"seg_{self._cut:05d}.mp4"
        try:
            shown = self._piece(self.muxer.tail(mp4), mp4)
        except Exception as e:                                  # noqa: BLE001
            self._fail(e)
            return
        if shown is not None:
            self.emit(("segment", shown))

    def _fail(self, e: Exception) -> None:
        if not self._failed.is_set():
            self._failed.set()
            self.emit(("error", e))
