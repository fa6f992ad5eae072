"""FLAME-QA-nano: the project's own synthetic corpus (dialogues of its world, synthetic speech, procedural motion).

A sample is the last turn of a dialogue drawn from the corpus's world (a2llm/data/nano/world.py: templates,
openers, feelings, follow-ups, off-domain questions): the question spoken (by a2llm/data/nano/voices.py's
espeak-ng, flite and festival voices, or espeak-ng only: ``NanoConfig.question_voices``), the answer spoken by
espeak-ng and animated, the earlier turns as text ``context`` (the visitor's questions and the avatar's replies, as
the engine keeps a dialogue). 30 % of dialogues are one turn, the rest 2..12 turns.

Sample ``i`` is a function of ``(seed, i)``, so generation is deterministic, parallel and resumable:
re-running over a folder skips the ids already written. One caveat: espeak-ng's waveform generator keeps
internal state (flutter, breath noise, phase), so between runs its audio samples and phone boundaries can
differ by up to a pitch period (~10 ms); every draw of the generator (text, voices, style, split) is exact.

Splits: ``train`` and ``val`` use only the seen world (wordings, templates, topics, off-domain frames and
vocabulary) and training voices; ``test`` holds out one thing per sample (``meta.holdout``): ``"voice"`` (a seen
dialogue, its question spoken by a voice never used in training), or, spoken by training voices, a last turn with
a held-out ``"template"``, ``"wording"``, ``"topic"`` or off-domain frame or vocabulary item (``"offdomain"``);
``meta.held_out`` names the held-out parts of the last turn.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from a2llm.data.builder.media import resample
from a2llm.data.format import FlameQASample, FlameQAWriter, Turn
from a2llm.data.nano.motion import CueTime, Segment, Style, find_cues, synthesize_motion
from a2llm.data.nano.world import WorldTurn, draw_dialogue, draw_num_turns

SAMPLE_RATE = 16000

# Training voices: espeak-ng accents x voice variants. Forty of them (the first ten were the corpus's only ones
# until the eighth session): with ten, held-out-voice questions were heard clearly worse than training-voice
# ones (docs/NANO.md). The held-out voices' accents (Lancaster, West Midlands) and variant m7 never train.
_TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland")
_EXTRA_VARIANTS = ("m5", "grandpa", "m8", "f5", "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "aunty", "benjamin",
                   "caleb", "david", "ed", "edward", "john", "linda", "max", "Michael", "paul", "quincy", "rob",
                   "robert", "steph", "zac", "norbert", "shelby", "travis", "victor")
TRAIN_VOICES = ("en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f1", "en-gb-x-rp+m2", "en-029+f3", "en-us+m4",
                "en-gb-scotland+f4", "en-us+f5", "en-gb+m6") + tuple(
    f"{_TRAIN_ACCENTS[i % len(_TRAIN_ACCENTS)]}+{v}" for i, v in enumerate(_EXTRA_VARIANTS))
TEST_VOICES = ("en-gb-x-gbclan+f2", "en-us+m7", "en-gb-x-gbcwmd+f4")


@dataclass(frozen=True)
class NanoConfig:
    """What the generator draws from. Fractions are of all samples (``test_holdouts``: of the test split)."""

    seed: int = 0
    answer_voice: str = "en-us"
    answer_pitch: int = 45
    answer_rate: tuple[int, int] = (160, 180)
    question_rate: tuple[int, int] = (140, 200)
    question_pitch: tuple[int, int] = (25, 75)
    snr_db: tuple[float, float] = (15.0, 35.0)
    val_fraction: float = 0.05
    test_fraction: float = 0.15
    test_holdouts: tuple[tuple[str, float], ...] = (("voice", 0.3), ("template", 0.2), ("wording", 0.2),
                                                    ("topic", 0.15), ("offdomain", 0.15))
    single_turn_fraction: float = 0.3       # dialogues of one turn; the rest 2..max_turns, uniform
    max_turns: int = 12
    high_dynamic_fraction: float = 0.10
    offdomain_intensity: float = 0.5        # face intensity of off-domain fallbacks: mildly apologetic
    # Who says the questions: "mixed" — a2llm/data/nano/voices.py (espeak-ng, flite and festival voices with
    # augmentation; VOICE_SETS["train"] / ["test"]); "espeak" — espeak-ng only (TRAIN_VOICES / TEST_VOICES, the
    # corpus until issue 21; question_rate, question_pitch and snr_db above apply to it only).
    question_voices: str = "mixed"


def _resample(audio: np.ndarray, sr: int) -> np.ndarray:
    return resample(audio, sr, SAMPLE_RATE)


def _split(rng: np.random.Generator, cfg: NanoConfig) -> tuple[str, str | None]:
    u = rng.random()
    if u < cfg.test_fraction:
        names = [h for h, _ in cfg.test_holdouts]
        p = np.array([w for _, w in cfg.test_holdouts], float)
        return "test", names[int(rng.choice(len(names), p=p / p.sum()))]
    if u < cfg.test_fraction + cfg.val_fraction:
        return "val", None
    return "train", None


def _segments(utt) -> list[Segment]:
    """Phones -> articulatory segments; a diphthong becomes two halves that glide to its end vowel."""
    from a2llm.data.phones import ARTICULATION, SILENCE_ID, articulation, phone_class

    def seg(start, end, art, silence=False):
        return Segment(start=start, end=end, silence=silence, jaw=art.jaw, closure=art.closure,
                       labiodental=art.labiodental, round=art.round, spread=art.spread)

    out = []
    for p in utt.phonemes:
        art = articulation(p.symbol)
        if art.glide_to:
            mid = 0.5 * (p.start + p.end)
            out += [seg(p.start, mid, art), seg(mid, p.end, ARTICULATION[art.glide_to])]
        else:
            out.append(seg(p.start, p.end, art, silence=phone_class(p.symbol) == SILENCE_ID))
    return out


def _word_times(utt) -> list[tuple[str, float, float]]:
    speech_end = max((p.end for p in utt.phonemes if p.symbol != "_"), default=utt.duration)
    words = list(utt.words)
    return [(utt.word_text(w), w.start, words[k + 1].start if k + 1 < len(words) else speech_end)
            for k, w in enumerate(words)]


def answer_words(utt, fps: int = 25) -> list[list[int]]:
    """[char start, char end, first frame] of every spoken word of ``utt``'s text (frames at ``fps``, the frame
    holding the word's start): where the word-aligned text layout puts each word's text tokens."""
    return [[w.text_position, w.text_position + w.length, int(w.start * fps)] for w in utt.words]


def _noisy(audio: np.ndarray, rng: np.random.Generator, snr_db: float) -> tuple[np.ndarray, int]:
    """(audio with lead/tail silence, a drawn gain and noise at ``snr_db``; the lead silence in samples)."""
    lead, tail = (np.zeros(int(rng.uniform(0.1, 0.3) * SAMPLE_RATE), np.float32) for _ in range(2))
    x = np.concatenate([lead, audio * rng.uniform(0.6, 1.0), tail])
    power = np.mean(audio ** 2) + 1e-12
    x = x + rng.normal(scale=np.sqrt(power / 10 ** (snr_db / 10)), size=len(x))
    return np.clip(x, -1, 1).astype(np.float32), len(lead)


class SpokenQuestion(NamedTuple):
    """A question as the user says it. ``phones``: [round(25 × seconds)] 25 Hz phone classes of ``audio``
    (silence over the lead and tail), the labels of the audio encoder's phone pre-training."""

    audio: np.ndarray
    phones: np.ndarray
    rate: int
    pitch: int
    snr_db: float


def spoken_question(text: str, voice: str, rng: np.random.Generator, noise_rng: np.random.Generator,
                    cfg: NanoConfig) -> SpokenQuestion:
    """``text`` said by ``voice`` at a drawn rate and pitch, with lead/tail silence and noise at a drawn SNR."""
    from a2llm.data.espeak import synthesize
    from a2llm.data.phones import frame_tokens

    rate, pitch = int(rng.integers(*cfg.question_rate)), int(rng.integers(*cfg.question_pitch))
    snr = float(rng.uniform(*cfg.snr_db))
    q = synthesize(text, voice=voice, rate=rate, pitch=pitch)
    audio, lead = _noisy(_resample(q.audio, q.sample_rate), noise_rng, snr)
    shift = lead / SAMPLE_RATE
    phones = frame_tokens([(p.symbol, p.start + shift, p.end + shift) for p in q.phonemes],
                          int(round(25 * len(audio) / SAMPLE_RATE)))
    return SpokenQuestion(audio, phones, rate, pitch, snr)


def spoken_answer(text: str, rng: np.random.Generator, cfg: NanoConfig):
    """``text`` said by the answer voice at a drawn rate: (espeak utterance with phoneme timings, 16 kHz audio,
    25 Hz frames, rate)."""
    from a2llm.data.espeak import synthesize

    rate = int(rng.integers(*cfg.answer_rate))
    utt = synthesize(text, voice=cfg.answer_voice, rate=rate, pitch=cfg.answer_pitch)
    audio = _resample(utt.audio, utt.sample_rate)
    return utt, audio, int(round(25 * len(audio) / SAMPLE_RATE)), rate


def _streams(index: int, cfg: NanoConfig) -> list[np.random.Generator]:
    # Separate streams: espeak-ng's audio length varies slightly from run to run (its wave generator keeps
    # state), so the noise and motion draws, which depend on lengths, must not shift the other draws; the
    # split and the dialogue have their own stream, so they are known without any audio.
    return [np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, index]).spawn(4)]


def sample_dialogue(index: int, cfg: NanoConfig = NanoConfig()) -> tuple[str, str | None, tuple[WorldTurn, ...]]:
    """(split, test holdout or None, dialogue) of sample ``index``: what :func:`make_sample` says, without audio."""
    world_rng = _streams(index, cfg)[3]
    split, holdout = _split(world_rng, cfg)
    num_turns = draw_num_turns(world_rng, cfg.single_turn_fraction, cfg.max_turns)
    return split, holdout, draw_dialogue(world_rng, num_turns, holdout)


def pick_voice(voices: tuple[str, ...], rng: np.random.Generator) -> str:
    """A synthesizer first, then one of its voices (ids "synth:voice"): drawn uniformly over all voices, the 43
    espeak-ng variants would leave flite and festival 13 % of the questions."""
    synths = sorted({v.split(":", 1)[0] for v in voices})
    synth = synths[rng.integers(len(synths))]
    pool = [v for v in voices if v.split(":", 1)[0] == synth]
    return pool[rng.integers(len(pool))]


def make_sample(index: int, cfg: NanoConfig = NanoConfig()) -> FlameQASample:
    """Build sample ``index`` (deterministic for ``cfg.seed``): the last turn of a drawn dialogue."""
    from a2llm.data.phones import frame_tokens

    rng, noise_rng, motion_rng, _ = _streams(index, cfg)
    split, holdout, dialogue = sample_dialogue(index, cfg)
    num_turns, last = len(dialogue), dialogue[-1]
    question, answer, emotion = last.question, last.answer, last.emotion
    if cfg.question_voices == "espeak":
        voices = TEST_VOICES if holdout == "voice" else TRAIN_VOICES
        voice = voices[rng.integers(len(voices))]
        q = spoken_question(question, voice, rng, noise_rng, cfg)
        q_audio, q_phones = q.audio, q.phones
        q_meta = {"question_rate": q.rate, "question_pitch": q.pitch, "snr_db": round(q.snr_db, 2)}
    elif cfg.question_voices == "mixed":
        from a2llm.data.nano.voices import VOICE_SETS, speak_question

        voice = pick_voice(VOICE_SETS["test" if holdout == "voice" else "train"], rng)
        spoken = speak_question(question, voice, rng)
        q_audio, q_phones = spoken.audio, spoken.phones
        q_meta = {"snr_db": spoken.meta["snr_db"], "question_speech": spoken.meta}
    else:
        raise ValueError(f"question_voices {cfg.question_voices!r}: choose 'mixed' or 'espeak'")

    r, response_audio, num_frames, a_rate = spoken_answer(answer, rng, cfg)
    high = bool(rng.random() < cfg.high_dynamic_fraction)
    mild = cfg.offdomain_intensity if last.kind == "offdomain" else 1.0
    style = Style(intensity=float(rng.uniform(0.8, 1.2)) * (1.8 if high else 1.0) * mild,
                  articulation=float(rng.uniform(0.85, 1.15)), head=float(rng.uniform(0.7, 1.3)) * (1.6 if high else 1.0),
                  blink_rate=float(rng.uniform(0.25, 0.45)))
    cues: list[CueTime] = find_cues(_word_times(r), emotion)
    motion = synthesize_motion(_segments(r), num_frames, emotion, cues, style, motion_rng)
    tokens = frame_tokens(r.phonemes, num_frames)

    # Earlier turns as the engine keeps them: the visitor's questions and the avatar's replies, as text.
    context = [turn for t in dialogue[:-1] for turn in (Turn("human", t.question), Turn("assistant", t.answer))]
    return FlameQASample(
        id=f"nano-{index:06d}", question_text=question, question_audio=q_audio, response_text=answer,
        response_audio=response_audio, sample_rate=SAMPLE_RATE, motion=motion, emotion=emotion,
        audio_tokens=tokens, context=context, high_dynamic=high, source="flame-qa-nano", split=split,
        meta={"template": last.answer_id, "topic": last.topic, "question_voice": voice, **q_meta,
              "answer_voice": cfg.answer_voice, "answer_rate": a_rate, "holdout": holdout, "style": asdict(style),
              "cues": [c.cue for c in cues], "question_phones": q_phones.tolist(), "answer_words": answer_words(r),
              "kind": last.kind, "intent": last.intent, "wording": last.wording, "slots": dict(last.slots),
              "held_out": list(last.held_out),
              "context_held_out": sorted({p for t in dialogue[:-1] for p in t.held_out}),
              "turn_index": num_turns - 1, "num_turns": num_turns})


def generate(out: str | Path, num: int, cfg: NanoConfig = NanoConfig(), workers: int = 2,
             shard_size: int = 500, progress: bool = True) -> Path:
    """Write samples 0..num-1 into ``out`` (continuing a partial folder) and return dataset.json's path."""
    return write_samples(out, num, make_sample, "nano", "flame-qa-nano", cfg, workers, shard_size, progress)


def write_samples(out: str | Path, num: int, make: Callable[[int, NanoConfig], FlameQASample], prefix: str,
                  name: str, cfg: NanoConfig, workers: int = 2, shard_size: int = 500, progress: bool = True) -> Path:
    """``make(i, cfg)`` for i in 0..num-1 into the FLAME-QA folder ``out``, skipping the ids (``{prefix}-NNNNNN``)
    already written, on ``workers`` processes (``make`` must be a module-level function); returns dataset.json."""
    writer = FlameQAWriter(out, name=name, sample_rate=SAMPLE_RATE, shard_size=shard_size)
    todo = [i for i in range(num) if not writer.has(f"{prefix}-{i:06d}")]
    bar = tqdm(total=num, initial=num - len(todo), desc=name, unit="sample", disable=not progress)
    try:
        if workers <= 1:
            for i in todo:
                writer.add(make(i, cfg))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for sample in pool.map(make, todo, [cfg] * len(todo), chunksize=8):
                    writer.add(sample)
                    bar.update()
    finally:
        bar.close()
        path = writer.close()
    return path
