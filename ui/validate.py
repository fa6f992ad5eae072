"""Checks on what a visitor sends, before the model sees it: typed text and recorded speech.

* Typed text: at least one visible character (zero-width spaces, control characters and whitespace alone are
  refused) and at most :data:`MAX_TEXT_CHARS` characters: the embedded model was trained on questions of one or two
  sentences, and a whole page of text would fill the dialogue's context for nothing.
* Speech: silero-vad (the model inside its pip package, nothing downloaded) scores each 32 ms frame; a recording
  with less than :data:`MIN_SPEECH_S` of speech, or whose speech is under :data:`MIN_SPEECH_SHARE` of it, is
  refused (noise, music, silence, a cough).
"""
from __future__ import annotations

import threading
import unicodedata

import numpy as np

MAX_TEXT_CHARS = 1000
MIN_SPEECH_S = 0.3
MIN_SPEECH_SHARE = 0.05
SPEECH_THRESHOLD = 0.5          # silero-vad's own default for "this frame is speech"
_INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me"}


def check_text(text: str | None) -> str:
    """A typed message, stripped, or a ValueError that says what is wrong with it."""
    text = (text or "").strip()
    if not any(unicodedata.category(c) not in _INVISIBLE for c in text):
        raise ValueError("Type a message first: this one has no visible characters." if text else
                         "Type a message or record a question first.")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"Your message is {len(text):,} characters long; the avatar takes at most "
                         f"{MAX_TEXT_CHARS:,}. Shorten it to a question or two.")
    return text


_vad = None
_vad_lock = threading.Lock()


def _model():
    global _vad
    if _vad is None:
        from ui.handsfree import load_vad_model

        _vad = load_vad_model()
    return _vad


def speech_frames(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """silero-vad's speech probability of each 512-sample frame of 16 kHz mono ``audio`` [N] -> [N // 512]."""
    import torch

    if sample_rate != 16000:
        raise ValueError(f"speech_frames takes 16 kHz audio, got {sample_rate} Hz")
    x = np.asarray(audio, np.float32).reshape(-1)
    n = len(x) // 512
    if n == 0:
        return np.zeros(0, np.float32)
    frames = torch.from_numpy(np.ascontiguousarray(x[: n * 512].reshape(n, 512)))
    out = np.empty(n, np.float32)
    with _vad_lock, torch.inference_mode():          # one model, recurrent state: one recording at a time
        model = _model()
        model.reset_states()
        for i in range(n):
            out[i] = float(model(frames[i:i + 1], 16000))
        model.reset_states()
    return out


def check_speech(audio: np.ndarray, sample_rate: int = 16000) -> float:
    """Refuse (ValueError) a 16 kHz recording without enough speech; returns its seconds of speech."""
    probs = speech_frames(audio, sample_rate)
    speech_s = float((probs >= SPEECH_THRESHOLD).sum()) * 512 / sample_rate
    share = speech_s / max(len(audio) / sample_rate, 1e-9)
    if speech_s < MIN_SPEECH_S or share < MIN_SPEECH_SHARE:
        raise ValueError(f"No speech found in the recording ({speech_s:.1f} s of speech in "
                         f"{len(audio) / sample_rate:.1f} s): record your question again, close to the microphone.")
    return speech_s
