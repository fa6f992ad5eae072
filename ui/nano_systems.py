"""The built-in systems of the Compare tab: one spoken sentence animated by every nano system, for comparison.

    sample = spoken_sample("Haha, that is wonderful news!", emotion="happy")
    files = animate_with_nano_systems(sample, "checkpoints/a2llm-nano")   # {name: .npz path}, reference first

The sentence is spoken by FLAME-QA-nano's answer voice (espeak-ng) and its procedural ground truth made the way
the corpus makes it (phone articulation, the emotion's profile, cue words), so every system is judged against the
same reference as in the tables. The systems: A²-LLM-nano (the shipped joint model), its curriculum stages kept in
the checkpoint (``a2llm.json`` "curriculum"), the adapter-only ablation and the audio-only avatar. The A²-LLM
models are fed the sentence as a read-aloud (TTS) answer with its speech tokens (teacher forcing, as in table 3),
so their motion is on the speech's own timeline; the audio-only avatar hears the speech. No gradio here.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ui.files import new_output

MAX_CHARS = 300


def spoken_sample(text: str, emotion: str = "neutral", seed: int = 0):
    """A typed sentence -> a FLAME-QA sample: answer speech (16 kHz), its 25 Hz phone tokens, procedural motion,
    and where each word starts (``meta.answer_words``)."""
    from a2llm.data.espeak import synthesize
    from a2llm.data.format import EMOTIONS, FlameQASample
    from a2llm.data.nano.generate import NanoConfig, _resample, _segments, _word_times, answer_words
    from a2llm.data.nano.motion import Style, find_cues, synthesize_motion
    from a2llm.data.phones import frame_tokens

    text = " ".join((text or "").split())
    if not text:
        raise ValueError("type the sentence the systems should say")
    if len(text) > MAX_CHARS:
        raise ValueError(f"the sentence is {len(text)} characters; keep it under {MAX_CHARS} (a few seconds)")
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; choose from {', '.join(EMOTIONS)}")
    cfg = NanoConfig()
    utt = synthesize(text, voice=cfg.answer_voice, rate=int(np.mean(cfg.answer_rate)), pitch=cfg.answer_pitch)
    audio = _resample(utt.audio, utt.sample_rate)
    frames = int(round(25 * len(audio) / 16000))
    motion = synthesize_motion(_segments(utt), frames, emotion, find_cues(_word_times(utt), emotion), Style(),
                               np.random.default_rng(seed))
    return FlameQASample(id="compare", question_text="", question_audio=np.zeros(0, np.float32),
                         response_text=text, response_audio=audio, sample_rate=16000, motion=motion,
                         emotion=emotion, audio_tokens=frame_tokens(utt.phonemes, frames),
                         meta={"answer_words": answer_words(utt)})    # the word layout places text by them


@lru_cache(maxsize=8)
def _model(folder: str):
    from a2llm.model import A2LLM

    return A2LLM.from_pretrained(folder).eval()


@lru_cache(maxsize=2)
def _avatar(folder: str):
    from a2llm.baselines.audio_only import AudioOnlyAvatar

    return AudioOnlyAvatar.from_pretrained(folder)


def system_folders(checkpoint: str | Path) -> dict[str, Path]:
    """The checkpoint's systems: {"A²-LLM-nano": folder, "<curriculum stage>": folder, "adapter-only": folder}
    (A²-LLM models) — the audio-only avatar is separate (:func:`animate_with_nano_systems`)."""
    from a2llm.model import read_manifest

    root = Path(checkpoint)
    manifest = read_manifest(root)
    out = {"A²-LLM-nano": root}
    for name, rel in manifest.get("curriculum", {}).items():
        if (root / rel).resolve() != root.resolve():
            out[name] = root / rel
    if "adapter-only" in manifest.get("baselines", {}):
        out["adapter-only"] = root / manifest["baselines"]["adapter-only"]
    return out


def animate_with_nano_systems(sample, checkpoint: str | Path) -> dict[str, Path]:
    """Motion of every built-in system for ``sample``'s speech, saved as A²-LLM ``.npz`` files with the speech.

    Returns {label: path}, the procedural ground truth first (the reference)."""
    import torch

    from a2llm.generate import Generator
    from a2llm.model import load_checkpoint_tokenizer, read_manifest
    from a2llm.motion.io import save_motion

    root = Path(checkpoint)
    manifest = read_manifest(root)
    tok = load_checkpoint_tokenizer(root)
    motions = {"ground truth": sample.motion}
    with torch.no_grad():
        for name, folder in system_folders(root).items():
            motions[name] = Generator(_model(str(folder)), tok).motion_for_reference([sample], "tts")[0]
        if "audio-only" in manifest.get("baselines", {}):
            rvq = _model(str(root)).motion_tokenizer
            avatar = _avatar(str(root / manifest["baselines"]["audio-only"]))
            motions["audio-only"] = avatar.animate(sample.response_audio, sample.sample_rate, rvq)
    out = {}
    for name, m in motions.items():
        path = new_output(".npz", "system")
        save_motion(path, np.asarray(m, np.float32), audio=sample.response_audio, sample_rate=sample.sample_rate)
        out[name] = path
    return out
