"""Procedural FLAME motion for FLAME-QA-nano answers (open default head, 25 fps).

Two independent sources, on purpose:

* **Mouth** from the *phone timings* of the answer's speech — visemes with coarticulation
  (Cohen–Massaro dominance blending: each phone pulls each articulator towards its target with a
  dominance that decays away from the phone's centre; bilabials dominate lip closure so /p b m/ always
  close the lips), gated to rest in pauses so the mouth is closed in silences.
* **Upper face, cheeks, smile and head** from the *text*: the answer's emotion sets a sustained
  expression profile, cue words ("haha", "wow", "sorry", ...) add peaks at the times espeak-ng speaks
  them, plus blinks and small head motion. Nothing here looks at the audio: espeak-ng's speech carries no
  emotion, so an audio-only model cannot recover this part (the seed's Semantic-Emotion Gap).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a2llm.head.open_head import EXPRESSION_NAMES
from a2llm.motion.layout import EYELIDS, FPS, GLOBAL, JAW, MOTION_DIM
from a2llm.data.nano.templates import CUE_EMOTIONS, CUE_WORDS

EX = {name: i for i, name in enumerate(EXPRESSION_NAMES)}

#: Sustained expression per emotion (expression coefficients; "lids" = eyelids, head = pitch/yaw/roll rad).
PROFILES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"smile": 1.3, "cheek_raise": 0.9, "squint": 0.3, "brow_raise": 0.3},
    "sad": {"inner_brow_raise": 1.6, "mouth_corner_down": 1.3, "brow_furrow": 0.5, "lids": 0.2, "pitch": 0.07},
    "surprised": {"brow_raise": 2.2, "lids": -0.25, "jaw": 0.03, "pitch": -0.04},
    "contemptuous": {"smirk_left": 1.6, "nose_wrinkle": 0.3, "brow_furrow": 0.4, "lids": 0.2, "roll": 0.06,
                     "yaw": 0.06},
    "curious": {"brow_raise": 0.9, "inner_brow_raise": 0.6, "squint": 0.2, "roll": 0.09},
}

#: Peaks added around a cue word (same keys as PROFILES).
CUES: dict[str, dict[str, float]] = {
    "laugh": {"smile": 1.4, "cheek_raise": 1.0, "squint": 0.6, "jaw": 0.05, "pitch": -0.05},
    "wow": {"brow_raise": 1.6, "lids": -0.2, "jaw": 0.04},
    "sorry": {"inner_brow_raise": 1.0, "mouth_corner_down": 0.6},
    "scorn": {"smirk_left": 1.0, "nose_wrinkle": 0.5, "lids": 0.15},
    "wonder": {"brow_raise": 0.8, "roll": 0.05},
}


@dataclass(frozen=True)
class Segment:
    """A phone with its articulatory targets (see a2llm.data.phones.Articulation)."""

    start: float
    end: float
    silence: bool
    jaw: float = 0.0
    closure: float = 0.0
    labiodental: float = 0.0
    round: float = 0.0
    spread: float = 0.0

    @property
    def center(self) -> float:
        return 0.5 * (self.start + self.end)


@dataclass(frozen=True)
class CueTime:
    cue: str
    start: float
    end: float


@dataclass(frozen=True)
class Style:
    """Per-sample style knobs (drawn by the generator)."""

    intensity: float = 1.0        # scales the emotion profile and cue peaks
    articulation: float = 1.0     # scales jaw/lip excursions
    head: float = 1.0             # scales head motion
    blink_rate: float = 0.35      # blinks per second


def frame_times(num_frames: int, fps: int = FPS) -> np.ndarray:
    """Centre time of each frame [T] in seconds."""
    return (np.arange(num_frames) + 0.5) / fps


def _dominance(seg: Segment, t: np.ndarray, strength: float, power: float = 1.2) -> np.ndarray:
    # Spread grows with the phone's duration; exponent 1.2 keeps tails long enough to coarticulate,
    # a larger one keeps an articulator's target local (lip closure must not bleed into vowels).
    tau = 0.5 * (seg.end - seg.start) + 0.035
    return strength * np.exp(-(np.abs(t - seg.center) / tau) ** power)


def mouth_channels(segments: Sequence[Segment], t: np.ndarray) -> dict[str, np.ndarray]:
    """Blend phone targets into articulator curves [T] (jaw, closure, labiodental, round, spread)."""
    names = ("jaw", "closure", "labiodental", "round", "spread")
    num = {n: np.zeros_like(t) for n in names}
    den = {n: np.full_like(t, 1e-9) for n in names}
    for seg in segments:
        for n in names:
            if seg.silence:
                strength = 1.2
            elif n == "closure" and seg.closure > 0.5:
                strength = 3.0            # bilabials win the lips: the lips really meet
            elif n == "jaw" and seg.closure > 0.5:
                strength = 1.5
            elif n == "labiodental" and seg.labiodental > 0.5:
                strength = 2.5
            else:
                strength = 1.0
            d = _dominance(seg, t, strength, power=2.0 if n == "closure" else 1.2)
            num[n] += d * getattr(seg, n)
            den[n] += d
    out = {n: num[n] / den[n] for n in names}
    out["speech"] = _speech_gate(segments, t)
    return out


def _speech_gate(segments: Sequence[Segment], t: np.ndarray) -> np.ndarray:
    """1 while speaking, easing to 0 within ~60 ms into a pause (so pauses rest with a closed mouth)."""
    speaking = np.zeros_like(t)
    for seg in segments:
        if not seg.silence:
            speaking = np.maximum(speaking, ((t >= seg.start - 0.03) & (t < seg.end + 0.03)).astype(float))
    kernel = np.hanning(5)
    return np.convolve(speaking, kernel / kernel.sum(), mode="same")


def _smooth_noise(rng: np.random.Generator, n: int, dims: int, cutoff_hz: float, fps: int = FPS) -> np.ndarray:
    """Unit-variance smooth noise [n, dims]: white noise through a Gaussian low-pass."""
    sigma = fps / (2 * np.pi * cutoff_hz)
    k = np.arange(-int(4 * sigma) - 1, int(4 * sigma) + 2)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    kernel /= np.sqrt((kernel ** 2).sum())
    x = rng.normal(size=(n + 2 * len(k), dims))
    y = np.stack([np.convolve(x[:, d], kernel, mode="same") for d in range(dims)], 1)
    return y[len(k):len(k) + n]


def _envelope(t: np.ndarray, start: float, end: float, rise: float, fall: float) -> np.ndarray:
    up = np.clip((t - start + rise) / rise, 0, 1)
    down = np.clip((end + fall - t) / fall, 0, 1)
    e = np.minimum(up, down)
    return e * e * (3 - 2 * e)


def find_cues(words: Sequence[tuple[str, float, float]], emotion: str) -> list[CueTime]:
    """(word text, start, end) -> cue peaks for words of :data:`CUE_WORDS` that fit the answer's emotion."""
    lookup = {w: cue for cue, ws in CUE_WORDS.items() for w in ws}
    out = []
    for text, start, end in words:
        cue = lookup.get(re.sub(r"[^a-z]", "", text.lower()))
        if cue and emotion in CUE_EMOTIONS[cue]:
            out.append(CueTime(cue, start, end))
    return out


def _apply(m: np.ndarray, profile: dict[str, float], weight: np.ndarray, gate: np.ndarray) -> None:
    """Add a profile with per-frame weight [T]; its jaw part only while speaking (``gate``)."""
    for key, value in profile.items():
        w = weight * value
        if key in EX:
            m[:, EX[key]] += w
        elif key == "jaw":
            m[:, JAW.start] += w * gate
        elif key == "lids":
            m[:, EYELIDS] += w[:, None]
        elif key in ("pitch", "yaw", "roll"):
            m[:, GLOBAL.start + ("pitch", "yaw", "roll").index(key)] += w
        else:
            raise KeyError(f"unknown profile key {key!r}")


def synthesize_motion(segments: Sequence[Segment], num_frames: int, emotion: str,
                      cues: Sequence[CueTime] = (), style: Style = Style(),
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Procedural motion [num_frames, 58] for one spoken answer.

    Args:
        segments: phones tiling the audio (silences included), with articulatory targets.
        num_frames: T = round(25 × audio seconds).
        emotion: the answer text's emotion (a key of :data:`PROFILES`).
        cues: cue-word peaks (from the text's words and espeak-ng's word times).
        style: per-sample scale factors.
        rng: randomness for blinks, head motion and micro-expressions (deterministic per seed).
    """
    if emotion not in PROFILES:
        raise ValueError(f"unknown emotion {emotion!r}; choose from {sorted(PROFILES)}")
    rng = rng or np.random.default_rng(0)
    t = frame_times(num_frames)
    m = np.zeros((num_frames, MOTION_DIM), np.float64)

    # Mouth: visemes with coarticulation, at rest (closed) in pauses.
    ch = mouth_channels(segments, t)
    gate, a = ch["speech"], style.articulation
    m[:, JAW.start] += gate * a * 0.24 * ch["jaw"] * np.clip(1 - 1.3 * ch["closure"], 0, 1)  # closure wins
    m[:, EX["lip_press"]] += gate * 1.6 * ch["closure"]
    m[:, EX["pucker"]] += gate * a * 1.3 * ch["round"]
    m[:, EX["lip_stretch"]] += gate * a * 0.9 * ch["spread"]
    m[:, EX["lower_lip_depress"]] -= gate * 0.8 * ch["labiodental"]

    # Emotion of the text: a sustained profile over the answer, plus cue-word peaks.
    speech = [s for s in segments if not s.silence]
    if speech:
        env = _envelope(t, speech[0].start, speech[-1].end, rise=0.35, fall=0.45)
        wobble = 1.0 + 0.12 * _smooth_noise(rng, num_frames, 1, 0.4)[:, 0]
        _apply(m, PROFILES[emotion], style.intensity * env * wobble, gate)
    for c in cues:
        _apply(m, CUES[c.cue], style.intensity * _envelope(t, c.start, c.end, rise=0.12, fall=0.25), gate)

    # Blinks (eyes close fully for ~80 ms of a ~200 ms blink), never touching the emotion's lid offset.
    n_blinks = rng.poisson(style.blink_rate * num_frames / FPS)
    for centre in rng.uniform(0, num_frames / FPS, size=n_blinks):
        m[:, EYELIDS] += np.clip(1.0 - np.abs(t - centre) / 0.1, 0, 1)[:, None] ** 0.7
    m[:, EYELIDS] = np.clip(m[:, EYELIDS], -0.3, 1.0)

    # Small head motion and micro-expressions on the non-semantic bases.
    m[:, GLOBAL] += style.head * 0.025 * _smooth_noise(rng, num_frames, 3, 0.5)
    n_sem = len(EXPRESSION_NAMES)
    m[:, n_sem:50] += 0.12 * _smooth_noise(rng, num_frames, 50 - n_sem, 0.8)
    return m.astype(np.float32)
