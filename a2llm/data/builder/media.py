"""Reading raw media: audio from audio or video files, and video frames.

Audio files that libsndfile reads (wav, flac, ogg, ...) are read with soundfile; everything else (mp3, m4a,
the audio track of a video) is decoded by ffmpeg — the system one on PATH, else the static binary that the
``imageio-ffmpeg`` package ships. Resampling is polyphase (scipy), which keeps speech free of aliasing.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np


class MediaError(RuntimeError):
    """A media file could not be decoded (no audio stream, corrupt file, ffmpeg missing)."""


def ffmpeg_exe() -> str:
    """Path of an ffmpeg executable.

    Raises:
        MediaError: neither ffmpeg on PATH nor the imageio-ffmpeg package is available.
    """
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaError("ffmpeg is needed to decode this file: install it (apt-get install ffmpeg) "
                         "or `pip install imageio-ffmpeg`") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling of mono audio.

    Args:
        audio: [N] float samples.
        src_rate: their sample rate.
        dst_rate: the wanted rate.

    Returns:
        [round(N * dst / src)] float32.
    """
    if src_rate == dst_rate:
        return np.asarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(dst_rate, src_rate)
    return resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(mono float32 audio, rate) via libsndfile, or None when libsndfile cannot read the file."""
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError):
        return None
    return audio.mean(axis=1), int(rate)


def _decode_ffmpeg(path: Path, rate: int) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at ``rate``."""
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-vn", "-map", "0:a:0",
           "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        if "matches no streams" in " ".join(message):
            detail = "the file has no audio stream"
        raise MediaError(f"could not decode audio from {path}: {detail}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


def load_audio(path: str | Path, rate: int = 16000) -> np.ndarray:
    """Mono audio of an audio or video file at ``rate``.

    Args:
        path: the file.
        rate: wanted sample rate (16 kHz for Whisper and wav2vec2-style models).

    Returns:
        [N] float32 samples.

    Raises:
        FileNotFoundError: the file does not exist.
        MediaError: it has no decodable audio, or it is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"media file not found: {path}")
    read = _read_soundfile(path)
    audio = resample(*read, rate) if read is not None else _decode_ffmpeg(path, rate)
    if audio.size == 0:
        raise MediaError(f"{path} holds no audio samples")
    return audio


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a (builder-written) wav: ([N] float32 mono, sample rate)."""
    read = _read_soundfile(Path(path))
    if read is None:
        raise MediaError(f"{path} is not a readable audio file")
    return read


def video_fps(path: str | Path) -> float:
    """Frame rate of a video, from its container metadata.

    Raises:
        MediaError: the file has no video stream or no frame rate.
    """
    import imageio.v3 as iio

    try:
        meta = iio.immeta(str(path), plugin="FFMPEG")
    except Exception as exc:  # noqa: BLE001 - imageio raises many types for "not a video"
        raise MediaError(f"could not read {path} as a video: {exc}") from exc
    fps = meta.get("fps")
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise MediaError(f"{path}: no usable frame rate in its metadata ({fps!r})")
    return float(fps)


def video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode a video's frames one by one.

    Yields:
        [H, W, 3] uint8 RGB frames, in order.
    """
    import imageio.v3 as iio

    try:
        yield from iio.imiter(str(path), plugin="FFMPEG")
    except (OSError, RuntimeError) as exc:
        raise MediaError(f"could not decode the frames of {path}: {exc}") from exc
