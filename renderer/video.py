"""Frames + audio -> mp4 (H.264 + AAC) through imageio-ffmpeg, whole or in streaming segments.

Motion and speech share one timeline (DESIGN.md): frame f is shown at f / fps seconds, so a clip of
T frames lasts exactly T / fps seconds and its audio is padded or trimmed to that length.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import imageio_ffmpeg
import numpy as np
import soundfile as sf

FPS = 25
AUDIO_RATE_OUT = 24000


def fit_audio(audio: np.ndarray, sample_rate: int, num_frames: int, fps: int = FPS) -> np.ndarray:
    """Pad with silence or trim mono audio [N] so it lasts exactly num_frames / fps seconds."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    n = int(round(num_frames * sample_rate / fps))
    if len(audio) >= n:
        return audio[:n]
    return np.concatenate([audio, np.zeros(n - len(audio), np.float32)])


def _write_wav(audio: np.ndarray, sample_rate: int, directory: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".wav", dir=directory)
    os.close(fd)
    sf.write(path, np.clip(audio, -1.0, 1.0), int(sample_rate), subtype="PCM_16")
    return path


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: int = FPS, audio: np.ndarray | None = None,
              sample_rate: int | None = None, num_frames: int | None = None, quality: int = 7,
              x264_params: Sequence[str] = ()) -> Path:
    """Encode RGB frames (and optional mono audio) to an mp4.

    Args:
        path: output file; written to a temporary name first and renamed, so a failure leaves no
            half-written video behind.
        frames: iterable of [H, W, 3] uint8 frames, consumed lazily (H and W even).
        fps: frame rate.
        audio: [N] float mono in [-1, 1], fitted to the video's duration; needs ``sample_rate``.
        num_frames: frame count when ``frames`` is a generator and audio is given (to fit the audio
            before encoding starts); inferred from ``len(frames)`` otherwise.
        quality: imageio-ffmpeg quality 0..10.
        x264_params: extra encoder options (e.g. ``-preset veryfast -tune zerolatency`` for streamed segments).

    Returns:
        The output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if audio is not None and sample_rate is None:
        raise ValueError("audio given without sample_rate")
    if audio is not None and num_frames is None:
        frames = list(frames)
        num_frames = len(frames)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to encode")
    h, w = first.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"frame size must be even for H.264 (got {w}x{h})")
    tmp_dir = str(path.parent)
    wav = _write_wav(fit_audio(audio, sample_rate, num_frames, fps), sample_rate, tmp_dir) if audio is not None else None
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=tmp_dir)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            tmp, (w, h), fps=fps, codec="libx264", quality=quality, macro_block_size=2, ffmpeg_log_level="error",
            audio_path=wav, audio_codec="aac" if wav else None,
            output_params=[*x264_params, "-movflags", "+faststart"] + (["-ar", str(AUDIO_RATE_OUT)] if wav else []))
        writer.send(None)
        writer.send(np.ascontiguousarray(first))
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.chmod(tmp, 0o644)            # mkstemp creates 0600 files
        os.replace(tmp, path)
    finally:
        for p in (tmp, wav):
            if p and os.path.exists(p):
                os.remove(p)
    return path


def probe_mp4(path: str | Path) -> dict:
    """Frame count, duration and stream codecs of an mp4 (via the bundled ffmpeg)."""
    import re
    import subprocess

    n_frames, secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr
    video = re.search(r"Video: (\w+)", info)
    audio = re.search(r"Audio: (\w+)", info)
    return {"frames": n_frames, "seconds": secs, "video_codec": video.group(1) if video else None,
            "audio_codec": audio.group(1) if audio else None}


class SegmentWriter:
    """Write a stream of frames (and audio) as consecutive standalone mp4 segments.

    Frames and audio may arrive in chunks of any size and at different paces; a segment of
    ``segment_frames`` frames is written as soon as its frames *and* (when audio is used) the audio
    covering them have arrived, so the first segment can play while later ones are still being made.
    Segment k covers frames [k*S, (k+1)*S) and audio samples at the same times: one timeline.

    Args:
        out_dir: folder for the segments (``seg_00000.mp4``, ...).
        sample_rate: audio rate, or None for silent video.
        segment_seconds: segment length, ≥ 1 s (browser players need ≥ 1 s segments).
        fps: frame rate.
    """

    def __init__(self, out_dir: str | Path, sample_rate: int | None = None, segment_seconds: float = 1.0,
                 fps: int = FPS):
        if segment_seconds < 1.0:
            raise ValueError("segment_seconds must be at least 1.0 (streaming players need ≥ 1 s segments)")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sample_rate = sample_rate
        self.fps = fps
        self.segment_frames = int(round(segment_seconds * fps))
        self._frames: list[np.ndarray] = []
        self._audio = np.zeros(0, np.float32)
        self.segments: list[Path] = []
        self._closed = False

    def _samples_for(self, n_frames: int) -> int:
        return int(round(n_frames * self.sample_rate / self.fps))

    def add_frames(self, frames: Iterable[np.ndarray]) -> list[Path]:
        """Queue frames; returns the segments this completed."""
        self._frames.extend(frames)
        return self._flush(final=False)

    def add_audio(self, audio: np.ndarray) -> list[Path]:
        """Queue mono audio [N] at ``sample_rate``; returns the segments this completed."""
        if self.sample_rate is None:
            raise ValueError("this SegmentWriter was created without a sample_rate")
        self._audio = np.concatenate([self._audio, np.asarray(audio, np.float32).reshape(-1)])
        return self._flush(final=False)

    def finish(self, pad_to_segment: bool = True) -> list[Path]:
        """Write what is left. The last segment holds its final frame (with silence) up to a full
        segment when ``pad_to_segment``, since players reject segments shorter than one second."""
        if self._closed:
            return []
        if self._frames and pad_to_segment and len(self._frames) < self.segment_frames:
            self._frames += [self._frames[-1]] * (self.segment_frames - len(self._frames))
        out = self._flush(final=True)
        self._closed = True
        return out

    def _flush(self, final: bool) -> list[Path]:
        if self._closed:
            raise RuntimeError("SegmentWriter is finished")
        written = []
        while self._frames:
            n = min(self.segment_frames, len(self._frames))
            if n < self.segment_frames and not final:
                break
            audio = None
            if self.sample_rate is not None:
                need = self._samples_for(n)
                if len(self._audio) < need and not final:
                    break
                audio, self._audio = self._audio[:need], self._audio[need:]
            path = self.out_dir / f"seg_{len(self.segments):05d}.mp4"
            write_mp4(path, self._frames[:n], fps=self.fps, audio=audio, sample_rate=self.sample_rate)
            self._frames = self._frames[n:]
            self.segments.append(path)
            written.append(path)
        return written
