"""Spoken questions from several synthesizers (espeak-ng, flite, festival), with 25 Hz phone labels and augmentation.

Until issue 21 every question of FLAME-QA-nano was espeak-ng, and the model understood only espeak voices: seen
questions spoken by flite or festival were answered wrong every time. This module speaks a question with any of
three synthesizers, maps each synthesizer's phone timings onto the project's phone classes
(:data:`a2llm.data.phones.PHONES`, espeak-ng English mnemonics), and perturbs the audio, so the audio encoder's
phone pre-training and the question audio see more than one synthesizer.

Voices (ids ``"<synth>:<name>"``):

* ``espeak:<voice>`` — libespeak-ng in-process (:func:`a2llm.data.espeak.synthesize`), any voice it accepts
  ("espeak:en-us+m1"). Phones: its phoneme events through :func:`a2llm.data.phones.phone_name`.
* ``flite:<kal|kal16|awb|rms|slt>`` — the ``flite`` program (Debian package ``flite``, flite 2.2), one process per
  question: ``flite -voice V -psdur -t TEXT -o OUT.wav`` prints every segment as ``name:end`` (end time in
  seconds). kal is 8 kHz and kal16 16 kHz diphones of the same speaker (Kal); awb (Scottish male), rms (US male)
  and slt (US female) are 16 kHz clustergen voices. kal's diphone set lacks ``ah`` and says ``aa`` instead. The
  last pause's end can lie past the end of the audio (the diphone voices stop in the middle of the final pause);
  the labels are cut at the audio's end.
* ``festival:<kal_diphone|ked_diphone|cmu_us_slt_arctic_hts>`` — one long-lived ``festival --pipe`` process per
  Python process (startup and voice loading cost ~1.5 s; a question then costs ~40 ms with the diphone voices,
  ~0.1-0.3 s with HTS). Debian packages ``festival`` + ``festvox-kallpc16k`` (Kal, diphones), ``festvox-kdlpc16k``
  (Ked, diphones), ``festvox-us-slt-hts`` (SLT, HTS statistical parametric, 32 kHz). Segments are read from the
  utterance's Segment relation: name, ``end`` and the stress of the syllable (``R:SylStructure.parent.stress``;
  the same end times ``utt.save.segs`` writes). All three voices use festival's ``radio`` phone set (CMU lexicon;
  no installed English voice uses ``mrpa``). ked says every ``er`` as ``er r``.

Speaker overlap decides the held-out voices: flite kal/kal16 and festival kal_diphone are one speaker's diphones,
flite slt and festival's HTS voice one speaker's recordings (CMU ARCTIC slt). A voice held out by name while its
speaker trains through another synthesizer would not be held out, so the held-out non-espeak voices are the two
speakers that appear in one synthesizer only: ``flite:rms`` and ``festival:ked_diphone``. Training keeps the other
four speakers' voices, among them flite awb/slt/kal16 and festival kal, which issue 21 found always answered wrong.

Phone mapping (flite and festival, CMU "radio" set → project class). The target is what espeak-ng's en-us voice
says for the same words, because that is the labelling the model already learned:

======================  ==========  ===========================================================================
CMU / radio             class       why
======================  ==========  ===========================================================================
aa                      0           US LOT/PALM [ɑ]. espeak en-us says LOT words (concert, not, job) with ``0``
                                    (spoken [ɑ]) and only PALM (father) with ``A:``; LOT is far more frequent
ae                      a           TRAP
ah                      V           STRUT (stressed); ``ah`` with stress 0 (festival) → ``@``
ax                      @           schwa (flite/festival write unstressed ``ah0`` as ``ax``)
axr                     3           unstressed r-coloured schwa (lettER)
er                      3 / 3:      espeak's en-us lettER ``3`` when unstressed, NURSE ``3:`` when stressed;
                                    flite prints no stress: ``3``, the common case (-er, -or endings)
ao / eh / ih / iy       O: E I i:   THOUGHT, DRESS, KIT, FLEECE (unstressed iy = espeak's happY ``i`` → ``i:``)
uh / uw                 U u:        FOOT, GOOSE
ey ay oy aw ow          eI aI OI    diphthongs: FACE PRICE CHOICE MOUTH GOAT
                        aU oU
V + r (r not before a   A@ O@ e@    espeak en-us says vowel + coda r as one r-coloured class (start ``A@``,
vowel): aa/ao/ow/eh/ae/ i@ U@ aI@   north ``O@``, square ``e@``, near ``i@``, cure ``U@``, fire ``aI@``, hour
ih/iy/uh/uw/ay/aw + r   aU@         ``aU@``); the r's time joins the vowel. ay/aw + unstressed er (fire, hour)
                                    likewise. Before a vowel the r stays ``r``: aa/ao still become A@/O@
                                    (story, for everything), other vowels keep their plain class (very; in
                                    "I read" the r starts the next word: flite prints no word boundaries)
er + r (ked)            3 / 3:      ked's extra r after er joins the er
ax + l (l not before a  @L          syllabic l (espeak ``@L``: little, table); el → @L
vowel)
p b t d k g f v s z m   same        the consonants have the same classes
n l r w
ch jh dh th sh zh hh    tS dZ D T   affricates and fricatives; hv (voiced h) → h
hv ng y                 S Z h N j
dx / nx                 t / n       flaps: espeak's flapped t (``t#``) is ``t``
em / en                 m / n       syllabic nasals, as espeak's ``m-``/``n-``
pau h# brth #           _           silence
======================  ==========  ===========================================================================

A symbol outside the table raises :class:`UnknownPhone` (no fallback class). Phone error rates of the
collapsed (silence-free) phone sequences between synthesizers are in docs/DATA.md ("Question voices").

Augmentation (:class:`VoiceConfig`, all drawn by :func:`speak_question` from its ``rng``): the synthesizer's own
speaking rate and F0 target (espeak wpm/pitch, flite ``duration_stretch``/``f0_shift``, festival
``Duration_Stretch``/``int_lr_params``, HTS ``-r``/``-fm``; flite rms ignores ``f0_shift``); then, on the
16 kHz audio, vocal-tract-length perturbation (sox ``pitch``: WSOLA time-stretch + resampling, which scales
formants and F0 together by α and keeps the duration), tempo (sox ``tempo -s``, WSOLA: duration / τ, pitch kept;
phone times are divided by τ), lead/tail silence, room reverb (a synthetic exponentially decaying noise impulse
response at a drawn RT60 and direct-to-reverberant ratio), white or pink noise at a drawn SNR, a telephone band
(300-3400 Hz Butterworth band-pass) and a peak level.
"""
from __future__ import annotations

import atexit
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence

import numpy as np

SAMPLE_RATE = 16000  # Hz of SpokenAudio.audio (the corpus rate, a2llm.data.nano.generate.SAMPLE_RATE)
FPS = 25  # phone label frames per second (the motion rate, a2llm.motion.layout.FPS)

# The espeak-ng voices of a2llm.data.nano.generate (TRAIN_VOICES / TEST_VOICES, copied rather than imported so
# that generate.py can import this module; tests/data/test_nano_voices.py checks they stay equal).
_TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-029", "en-gb-scotland")
_EXTRA_VARIANTS = ("m5", "grandpa", "m8", "f5", "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "aunty",
                   "benjamin", "caleb", "david", "ed", "edward", "john", "linda", "max", "Michael", "paul", "quincy",
                   "rob", "robert", "steph", "zac", "norbert", "shelby", "travis", "victor")
ESPEAK_TRAIN_VOICES = ("en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f1", "en-gb-x-rp+m2", "en-029+f3", "en-us+m4",
                       "en-gb-scotland+f4", "en-us+f5", "en-gb+m6") + tuple(
    f"{_TRAIN_ACCENTS[i % len(_TRAIN_ACCENTS)]}+{v}" for i, v in enumerate(_EXTRA_VARIANTS))
ESPEAK_TEST_VOICES = ("en-gb-x-gbclan+f2", "en-us+m7", "en-gb-x-gbcwmd+f4")

#: flite voices (built into Debian's flite 2.2).
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
#: festival voices → Debian package providing them.
FESTIVAL_VOICES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                   "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
_HTS = {"cmu_us_slt_arctic_hts"}
#: The recorded speaker behind each flite/festival voice (a held-out speaker must not train through another).
SPEAKERS = {"flite:kal": "kal", "flite:kal16": "kal", "festival:kal_diphone": "kal", "flite:awb": "awb",
            "flite:rms": "rms", "flite:slt": "slt", "festival:cmu_us_slt_arctic_hts": "slt",
            "festival:ked_diphone": "ked"}

#: Voice ids by split. Held out of training: the espeak TEST_VOICES and the speakers rms (flite only) and ked
#: (festival only); see the module docstring for why not slt or kal.
VOICE_SETS: dict[str, tuple[str, ...]] = {
    "train": tuple(f"espeak:{v}" for v in ESPEAK_TRAIN_VOICES)
    + ("flite:kal", "flite:kal16", "flite:awb", "flite:slt", "festival:kal_diphone", "festival:cmu_us_slt_arctic_hts"),
    "test": tuple(f"espeak:{v}" for v in ESPEAK_TEST_VOICES) + ("flite:rms", "festival:ked_diphone"),
}


class SynthesizerMissing(RuntimeError):
    """A synthesizer program or voice is not installed; the message names the Debian package."""


class UnknownPhone(ValueError):
    """A synthesizer printed a phone the mapping table does not cover."""


class SpokenAudio(NamedTuple):
    """A question as the user says it.

    Attributes:
        audio: [N] float32 mono at 16 kHz, in [-1, 1].
        phones: [round(25 × N / 16000)] int64 phone classes (:data:`a2llm.data.phones.PHONES`) of the frames of
            ``audio`` (the phone covering each 40 ms frame's centre; silence over the added lead and tail).
        meta: ``synth``, ``voice`` (the id), the synthesizer's own parameters and every augmentation parameter
            (JSON-serialisable).
    """

    audio: np.ndarray
    phones: np.ndarray
    meta: dict


@dataclass(frozen=True)
class VoiceConfig:
    """Ranges :func:`speak_question` draws from (uniform), and the probabilities of the optional effects.

    speed: synthesizer speaking rate relative to the voice's normal (espeak: 175 wpm × speed → 140..201 wpm).
    semitones: synthesizer F0 target shift (espeak pitch 50 + 25/3 per semitone → 25..75, as generate.py).
    vtlp: formant (and F0) scale α of the vocal-tract-length perturbation, applied with probability p_vtlp.
    tempo: WSOLA tempo factor τ (audio duration / τ), applied with probability p_tempo.
    lead, tail: seconds of silence added before and after the speech (as generate.py).
    rt60: reverberation time in s and drr_db the direct-to-reverberant energy ratio, with probability p_reverb.
    snr_db: speech-to-noise ratio of the additive noise (always added; pink with probability p_pink, else white).
    p_telephone: probability of the 300-3400 Hz telephone band.
    peak_dbfs: peak level of the result.
    """

    speed: tuple[float, float] = (0.8, 1.15)
    semitones: tuple[float, float] = (-3.0, 3.0)
    vtlp: tuple[float, float] = (0.88, 1.12)
    p_vtlp: float = 0.5
    tempo: tuple[float, float] = (0.85, 1.15)
    p_tempo: float = 0.4
    lead: tuple[float, float] = (0.1, 0.3)
    tail: tuple[float, float] = (0.1, 0.3)
    rt60: tuple[float, float] = (0.2, 0.7)
    drr_db: tuple[float, float] = (0.0, 12.0)
    p_reverb: float = 0.3
    snr_db: tuple[float, float] = (15.0, 35.0)
    p_pink: float = 0.5
    p_telephone: float = 0.15
    peak_dbfs: tuple[float, float] = (-18.0, -1.0)


#: No effect beyond the synthesizer's own rate/pitch draws: no vtlp, tempo, reverb, band limit, noise or padding.
CLEAN = VoiceConfig(p_vtlp=0.0, p_tempo=0.0, lead=(0.0, 0.0), tail=(0.0, 0.0), p_reverb=0.0,
                    snr_db=(200.0, 200.0), p_telephone=0.0, peak_dbfs=(-1.0, -1.0))


@dataclass(frozen=True)
class Synthesized:
    """One synthesizer call before augmentation.

    audio: [N] float32 at ``sample_rate`` (the synthesizer's own rate). phones: (class name, start s, end s) in
    time order, tiling from 0. raw: the synthesizer's own symbols (stress digit appended where known), in order.
    params: the synthesizer's parameters as set.
    """

    audio: np.ndarray
    sample_rate: int
    phones: tuple[tuple[str, float, float], ...]
    raw: tuple[str, ...]
    params: dict


# --- phone mapping ------------------------------------------------------------------------------------------

_SILENCE = "_"
#: CMU/radio phone → class, context-free part of the table in the module docstring.
RADIO_TO_CLASS: dict[str, str] = {
    "aa": "0", "ae": "a", "ah": "V", "ao": "O:", "aw": "aU", "ax": "@", "axr": "3", "ay": "aI", "eh": "E",
    "er": "3", "ey": "eI", "ih": "I", "iy": "i:", "ow": "oU", "oy": "OI", "uh": "U", "uw": "u:",
    "b": "b", "d": "d", "g": "g", "k": "k", "p": "p", "t": "t", "ch": "tS", "jh": "dZ",
    "f": "f", "v": "v", "th": "T", "dh": "D", "s": "s", "z": "z", "sh": "S", "zh": "Z", "hh": "h", "hv": "h",
    "m": "m", "n": "n", "ng": "N", "l": "l", "r": "r", "w": "w", "y": "j",
    "dx": "t", "nx": "n", "el": "@L", "em": "m", "en": "n",
    "pau": _SILENCE, "h#": _SILENCE, "brth": _SILENCE, "#": _SILENCE,
}  # fmt: skip
#: vowel + coda r → espeak en-us r-coloured class.
RHOTIC: dict[str, str] = {"aa": "A@", "ao": "O@", "ow": "O@", "eh": "e@", "ae": "e@", "ih": "i@", "iy": "i@",
                          "uh": "U@", "uw": "U@", "ay": "aI@", "aw": "aU@"}
_VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw",
           "el", "em", "en"}


def map_radio_phones(segments: Sequence[tuple[str, float, float, int | None]]) -> list[tuple[str, float, float]]:
    """CMU/radio segments → project phone classes with the context rules of the module docstring.

    Args:
        segments: (symbol, start s, end s, stress or None when the synthesizer gives none) in time order. Symbols
            are lower-case radio phones; a trailing stress digit ("ah0") is accepted in place of ``stress``.

    Returns:
        (class name, start, end) in time order; merged phones span their parts; consecutive silences merged.

    Raises:
        UnknownPhone: a symbol outside :data:`RADIO_TO_CLASS`.
    """
    segs = []
    for sym, start, end, stress in segments:
        name = sym.strip().lower()
        if name[-1:].isdigit() and name[:-1] in RADIO_TO_CLASS:
            name, stress = name[:-1], int(name[-1])
        if name not in RADIO_TO_CLASS:
            raise UnknownPhone(f"phone {sym!r} has no class in the radio/CMU table (voices.RADIO_TO_CLASS); "
                               f"known: {' '.join(sorted(RADIO_TO_CLASS))}")
        segs.append((name, float(start), float(end), stress))

    def vowel_follows(i: int) -> bool:
        return i + 1 < len(segs) and segs[i + 1][0] in _VOWELS

    out: list[tuple[str, float, float]] = []
    i = 0
    while i < len(segs):
        name, start, end, stress = segs[i]
        cls = RADIO_TO_CLASS[name]
        if name == "er":
            cls = "3:" if stress and stress > 0 else "3"
        elif name == "ah" and stress == 0:
            cls = "@"
        nxt = segs[i + 1][0] if i + 1 < len(segs) else None
        span = 1
        if nxt == "r" and not vowel_follows(i + 1) and (name in RHOTIC or name == "er"):
            cls, span = (RHOTIC.get(name, cls)), 2  # vowel + coda r: one r-coloured class
        elif nxt == "r" and name in ("aa", "ao"):
            # aa/ao + r + vowel (story, sorry, for everything): espeak says A@/O@ and keeps the r. Other vowels
            # before a prevocalic r are mostly a word end before an r-initial word ("I read": aI r i:).
            cls = RHOTIC[name]
        elif name in ("ay", "aw") and nxt == "er" and not segs[i + 1][3]:
            cls, span = RHOTIC[name], 2  # fire, hour
        elif name == "ax" and nxt == "l" and not vowel_follows(i + 1):
            cls, span = "@L", 2  # syllabic l
        end = segs[i + span - 1][2]
        if out and cls == _SILENCE and out[-1][0] == _SILENCE:
            out[-1] = (_SILENCE, out[-1][1], end)
        else:
            out.append((cls, start, end))
        i += span
    return out


# --- synthesizers -------------------------------------------------------------------------------------------


def _require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise SynthesizerMissing(
            f"the program {program!r} is not on PATH: install the Debian package {package!r} "
            f"(apt-get install -y {package}; scripts/setup.sh installs it)"
        )
    return path


def parse_voice(voice: str) -> tuple[str, str]:
    """``"flite:rms"`` → ``("flite", "rms")``; checks the synthesizer and, for flite/festival, the voice name."""
    if not isinstance(voice, str) or ":" not in voice:
        raise ValueError(f"voice id {voice!r} must be '<synth>:<name>', e.g. 'espeak:en-us+m1', 'flite:rms', "
                         f"'festival:kal_diphone'")
    synth, name = voice.split(":", 1)
    if synth == "flite" and name not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {name!r}; expected one of {list(FLITE_VOICES)}")
    if synth == "festival" and name not in FESTIVAL_VOICES:
        raise ValueError(f"unknown festival voice {name!r}; expected one of {sorted(FESTIVAL_VOICES)}")
    if synth not in ("espeak", "flite", "festival") or not name:
        raise ValueError(f"unknown synthesizer in voice id {voice!r}; expected espeak:, flite: or festival:")
    return synth, name


def _tmp_wav(prefix: str) -> str:
    """A new empty file for a synthesizer's wave output (in RAM where /dev/shm exists); the caller deletes it."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix=f"a2llm-{prefix}-", suffix=".wav", dir=base)
    os.close(fd)
    return path


def _read_wav(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return audio.mean(axis=1).astype(np.float32), int(rate)


def _synth_espeak(text: str, name: str, speed: float, semitones: float) -> Synthesized:
    from a2llm.data.espeak import synthesize
    from a2llm.data.phones import phone_name

    rate = int(np.clip(round(175 * speed), 80, 450))
    pitch = int(np.clip(round(50 + semitones * 25 / 3), 0, 100))
    utt = synthesize(text, voice=name, rate=rate, pitch=pitch)
    phones = tuple((phone_name(p.symbol), p.start, p.end) for p in utt.phonemes)
    return Synthesized(utt.audio, utt.sample_rate, phones, tuple(p.symbol for p in utt.phonemes),
                       {"rate_wpm": rate, "pitch": pitch})


_FLITE_SEG = re.compile(r"^([a-z#]+[0-9]?):([0-9.]+)$")


def _synth_flite(text: str, name: str, speed: float, semitones: float) -> Synthesized:
    exe = _require("flite", "flite")
    stretch, shift = 1.0 / speed, float(2.0 ** (semitones / 12.0))
    out = _tmp_wav("flite")
    cmd = [exe, "-voice", name, "--setf", f"duration_stretch={stretch:.4f}", "--setf", f"f0_shift={shift:.4f}",
           "-psdur", "-t", text, "-o", out]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode != 0 or os.path.getsize(out) == 0:
            raise RuntimeError(f"flite failed (exit {res.returncode}) for voice {name!r}: {res.stderr.strip()[-500:]}")
        audio, rate = _read_wav(out)
    finally:
        os.unlink(out)
    segs, start = [], 0.0
    for token in res.stdout.split():
        m = _FLITE_SEG.match(token)
        if m is None:
            raise RuntimeError(f"unexpected flite -psdur output {token!r} (voice {name!r})")
        end = float(m.group(2))
        segs.append((m.group(1), start, end, None))
        start = end
    return _finish_radio(audio, rate, segs, {"duration_stretch": round(stretch, 4), "f0_shift": round(shift, 4)})


def _finish_radio(audio: np.ndarray, rate: int, segs: list, params: dict) -> Synthesized:
    if not segs:
        raise RuntimeError("the synthesizer printed no segments")
    raw = tuple(s if st is None else f"{s}{st}" for s, _, _, st in segs)
    phones = [(c, a, b) for c, a, b in map_radio_phones(segs) if b > a]
    return Synthesized(audio, rate, tuple(phones), raw, params)


class _Festival:
    """One ``festival --pipe`` process: Scheme in on stdin, segments and a marker line out on stdout."""

    _MARK = "A2LLM-DONE"

    def __init__(self) -> None:
        exe = _require("festival", "festival")
        self.pid = os.getpid()
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([exe, "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True)
        self.voice: str | None = None
        atexit.register(self.close)

    def close(self) -> None:
        if os.getpid() == self.pid and self.proc.poll() is None:  # only the process that started it
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()

    def _stderr_tail(self) -> str:
        self._err.flush()
        self._err.seek(0)
        text = self._err.read()
        self._err.seek(0)
        self._err.truncate()
        return text.strip()[-500:]

    def run(self, scheme: str, timeout: float = 120.0) -> tuple[list[str], str]:
        """Evaluates ``scheme`` (which must set ``a2llm_ok`` to t on success); returns (stdout lines, stderr)."""
        self._stderr_tail()
        # Forms are evaluated one by one; an error aborts only its own form, so the marker form always runs.
        self.proc.stdin.write(f"(set! a2llm_ok nil)\n{scheme}\n(format t \"\\n{self._MARK} %l \\n\" a2llm_ok)"
                              f"(fflush nil)\n")
        self.proc.stdin.flush()
        # Read the pipe's bytes directly: a buffered readline could hold the marker line while select() waits.
        fd, buf = self.proc.stdout.fileno(), b""
        while (end := buf.find(f"\n{self._MARK} ".encode())) < 0 or buf.find(b"\n", end + 1) < 0:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                self.proc.kill()
                raise RuntimeError(f"festival did not answer within {timeout} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"festival exited (code {self.proc.wait()}): {self._stderr_tail()}")
            buf += chunk
        lines = buf[:end].decode("utf-8", errors="replace").splitlines()
        ok = buf[end:].split()[1] == b"t"
        return (lines if ok else None), self._stderr_tail()

    def select_voice(self, name: str) -> None:
        if self.voice == name:
            return
        lines, err = self.run(
            f"(begin (voice_{name}) (set! a2llm_stretch (Parameter.get 'Duration_Stretch))"
            f" (set! a2llm_lr int_lr_params) (set! a2llm_ok t))"
        )
        if lines is None:
            package = FESTIVAL_VOICES[name]
            raise SynthesizerMissing(f"festival could not load voice {name!r} ({err or 'no message'}): install the "
                                     f"Debian package {package!r} (apt-get install -y {package})")
        self.voice = name

    def synth(self, text: str, name: str, speed: float, semitones: float) -> Synthesized:
        self.select_voice(name)
        scale = float(2.0 ** (semitones / 12.0))
        if name in _HTS:  # HTS predicts its own durations and F0: hts_engine's speed (-r) and half-tone (-fm)
            setup = (f"(set! hts_engine_params (append {name}::hts_engine_params "
                     f"(list (list \"-r\" {speed:.4f}) (list \"-fm\" {semitones:.4f}))))")
            params = {"hts_speed": round(speed, 4), "hts_halftones": round(semitones, 4)}
        else:  # diphone voices: duration stretch and the F0 target of the LR intonation model
            setup = (f"(Parameter.set 'Duration_Stretch (/ a2llm_stretch {speed:.4f}))"
                     f"(set! int_lr_params (a2llm_scale_f0 a2llm_lr {scale:.4f}))")
            params = {"duration_stretch_factor": round(1.0 / speed, 4), "f0_scale": round(scale, 4)}
        out = _tmp_wav("festival")
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        try:
            lines, err = self.run(
                f"(begin {setup} (set! a2llm_u (utt.synth (Utterance Text \"{quoted}\")))"
                f" (utt.save.wave a2llm_u \"{out}\" 'riff)"
                f" (mapcar (lambda (s) (format t \"A2LLM-SEG %s %s %s\\n\" (item.name s) (item.feat s \"end\")"
                f" (item.feat s \"R:SylStructure.parent.stress\"))) (utt.relation.items a2llm_u 'Segment))"
                f" (set! a2llm_ok t))"
            )
            if lines is None:
                raise RuntimeError(f"festival failed to synthesise {text[:60]!r} with {name!r}: {err}")
            audio, rate = _read_wav(out)
        finally:
            os.unlink(out)
        segs, start = [], 0.0
        for line in lines:
            if not line.startswith("A2LLM-SEG "):
                continue
            _, sym, end, stress = line.split()
            segs.append((sym, start, float(end), int(float(stress))))
            start = float(end)
        return _finish_radio(audio, rate, segs, params)


# int_lr_params with target_f0_mean and target_f0_std scaled (F0 targets move by the same ratio).
_FESTIVAL_PRELUDE = """
(define (a2llm_scale_f0 params k)
  (mapcar (lambda (p) (if (member_string (car p) '(target_f0_mean target_f0_std))
                          (list (car p) (* k (car (cdr p)))) p)) params))
"""

_FESTIVAL: _Festival | None = None
_FESTIVAL_LOCK = threading.Lock()


def _festival() -> _Festival:
    """The process's festival (a new one after fork: a child must not share its parent's pipes)."""
    global _FESTIVAL
    if _FESTIVAL is None or _FESTIVAL.pid != os.getpid() or _FESTIVAL.proc.poll() is not None:
        fest = _Festival()
        lines, err = fest.run(f"{_FESTIVAL_PRELUDE}(set! a2llm_ok t)")
        if lines is None:
            raise RuntimeError(f"festival failed to start: {err}")
        _FESTIVAL = fest
    return _FESTIVAL


def synthesize(text: str, voice: str, speed: float = 1.0, semitones: float = 0.0) -> Synthesized:
    """Speaks ``text`` with one voice, without augmentation.

    Args:
        text: plain English text.
        voice: a voice id ("espeak:en-us+m1", "flite:rms", "festival:kal_diphone").
        speed: speaking rate relative to the voice's normal (> 1 faster).
        semitones: F0 target shift (flite rms ignores it).

    Returns:
        The audio at the synthesizer's rate with its phone classes (see :class:`Synthesized`).

    Raises:
        SynthesizerMissing: the program or voice is not installed (the message names the Debian package).
        UnknownPhone: a phone outside the mapping table.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    synth, name = parse_voice(voice)
    if synth == "espeak":
        return _synth_espeak(text, name, speed, semitones)
    if synth == "flite":
        return _synth_flite(text, name, speed, semitones)
    with _FESTIVAL_LOCK:
        return _festival().synth(text, name, speed, semitones)


# --- augmentation -------------------------------------------------------------------------------------------


def _sox(audio: np.ndarray, effects: list[str]) -> np.ndarray:
    """Runs 16 kHz mono float32 audio through sox ``effects`` (raw float32 on stdin/stdout)."""
    exe = _require("sox", "sox")
    fmt = ["-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1"]
    res = subprocess.run([exe, "-q", "-V1", *fmt, "-", *fmt, "-", *effects], input=audio.astype(np.float32).tobytes(),
                         capture_output=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"sox {' '.join(effects)} failed: {res.stderr.decode(errors='replace').strip()[-300:]}")
    return np.frombuffer(res.stdout, dtype=np.float32).copy()


def _reverb(x: np.ndarray, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with a synthetic room response: a unit direct path and exponentially decaying noise whose
    energy is ``drr_db`` below it (−60 dB after ``rt60`` s). Output is as long as the input (the tail is cut)."""
    from scipy.signal import fftconvolve

    n = max(int(rt60 * SAMPLE_RATE), 2)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    tail[0] = 1.0
    return fftconvolve(x, tail)[: x.size].astype(np.float32)


def _noise(n: int, pink: bool, rng: np.random.Generator) -> np.ndarray:
    """[n] unit-power white or pink (1/f power) noise."""
    white = rng.standard_normal(n)
    if pink and n > 1:
        spec = np.fft.rfft(white)
        f = np.arange(spec.size)
        spec[1:] /= np.sqrt(f[1:])
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def _telephone(x: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


def _draws(rng: np.random.Generator, cfg: VoiceConfig) -> tuple[dict, int]:
    """All random parameters of one question from exactly two draws of ``rng`` (a fixed count, whatever is
    enabled, so the caller's stream does not depend on the voice); the seed feeds noise and room response."""
    u = rng.random(16)
    seed = int(rng.integers(2**63 - 1))

    def lerp(k: int, bounds: tuple[float, float]) -> float:
        return float(bounds[0] + u[k] * (bounds[1] - bounds[0]))

    d = {
        "speed": lerp(0, cfg.speed),
        "semitones": lerp(1, cfg.semitones),
        "vtlp": lerp(3, cfg.vtlp) if u[2] < cfg.p_vtlp else 1.0,
        "tempo": lerp(5, cfg.tempo) if u[4] < cfg.p_tempo else 1.0,
        "lead_s": lerp(6, cfg.lead),
        "tail_s": lerp(7, cfg.tail),
        "rt60_s": lerp(9, cfg.rt60) if u[8] < cfg.p_reverb else None,
        "drr_db": lerp(10, cfg.drr_db) if u[8] < cfg.p_reverb else None,
        "snr_db": lerp(11, cfg.snr_db),
        "noise": "pink" if u[12] < cfg.p_pink else "white",
        "telephone": bool(u[13] < cfg.p_telephone),
        "peak_dbfs": lerp(14, cfg.peak_dbfs),
    }
    return d, seed


def speak_question(text: str, voice: str, rng: np.random.Generator, config: VoiceConfig = VoiceConfig()) -> SpokenAudio:
    """``text`` said by ``voice`` with drawn rate, pitch and augmentation, at 16 kHz with 25 Hz phone labels.

    Args:
        text: the question.
        voice: a voice id of :data:`VOICE_SETS` (any espeak-ng voice, flite or festival voice id works).
        rng: draws every random choice (a fixed number of draws per call); same seed → same parameters and, for
            flite and festival, the same audio (espeak-ng's wave generator keeps some state of its own: its audio
            and phone boundaries can differ by ~10 ms between calls).
        config: the ranges drawn from; :data:`CLEAN` for none of the effects.

    Returns:
        :class:`SpokenAudio`: audio [N] float32 16 kHz, phones [round(25 N / 16000)] int64, meta dict.
    """
    from a2llm.data.builder.media import resample
    from a2llm.data.phones import frame_tokens

    synth, name = parse_voice(voice)
    d, seed = _draws(rng, config)
    fx_rng = np.random.default_rng(seed)
    s = synthesize(text, voice, speed=d["speed"], semitones=d["semitones"])
    audio = resample(s.audio, s.sample_rate, SAMPLE_RATE)
    effects = []
    if d["vtlp"] != 1.0:
        effects += ["pitch", f"{1200 * np.log2(d['vtlp']):.2f}"]
    if d["tempo"] != 1.0:
        effects += ["tempo", "-s", f"{d['tempo']:.4f}"]
    if effects:
        audio = _sox(audio, effects)
    speech_power = float(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    lead, tail = int(round(d["lead_s"] * SAMPLE_RATE)), int(round(d["tail_s"] * SAMPLE_RATE))
    x = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(tail, np.float32)])
    if d["rt60_s"] is not None:
        x = _reverb(x, d["rt60_s"], d["drr_db"], fx_rng)
    x = x + _noise(x.size, d["noise"] == "pink", fx_rng) * np.float32(np.sqrt(speech_power / 10 ** (d["snr_db"] / 10)))
    if d["telephone"]:
        x = _telephone(x)
    x = x * np.float32(10 ** (d["peak_dbfs"] / 20) / (np.abs(x).max() + 1e-9))
    x = np.clip(x, -1.0, 1.0).astype(np.float32)

    # Phone times: synthesizer seconds / tempo (vtlp keeps the duration), shifted by the lead silence; cut at
    # the end of the speech so that nothing but silence covers the tail.
    speech_end = audio.size / SAMPLE_RATE
    shift = lead / SAMPLE_RATE
    timed = [(c, min(a / d["tempo"], speech_end) + shift, min(b / d["tempo"], speech_end) + shift)
             for c, a, b in s.phones]
    phones = frame_tokens([p for p in timed if p[2] > p[1]], int(round(FPS * x.size / SAMPLE_RATE)))
    meta = {"synth": synth, "voice": voice, **s.params,
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}}
    return SpokenAudio(x, phones, meta)


def config_dict(config: VoiceConfig = VoiceConfig()) -> dict:
    """The config as a plain dict (for a corpus's dataset.json)."""
    return asdict(config)


# --- measurement (python -m a2llm.data.nano.voices) ---------------------------------------------------------

MEASURE_VOICES = ("espeak:en-us", "flite:kal16", "flite:awb", "flite:rms", "flite:slt", "festival:kal_diphone",
                  "festival:ked_diphone", "festival:cmu_us_slt_arctic_hts")


def _frame_db(audio: np.ndarray, rate: int, num_frames: int) -> np.ndarray:
    """[num_frames] energy in dB of each 40 ms frame relative to the loudest frame."""
    hop = rate / FPS
    e = np.array([np.mean(audio[int(f * hop) : int((f + 1) * hop)].astype(np.float64) ** 2) if int(f * hop) <
                  audio.size else 0.0 for f in range(num_frames)])
    return 10 * np.log10((e + 1e-12) / (e.max() + 1e-12))


def measure(sentences: Sequence[str], voices: Sequence[str] = MEASURE_VOICES, low_db: float = -35.0) -> dict:
    """Speed, phone error rates between voices, and label/energy agreement over ``sentences``.

    Returns a dict: ``seconds`` (voice → mean wall seconds of :func:`speak_question` with the default config, one
    question at a time, after one warm-up call), ``cpu_seconds`` (the CPU seconds of those calls, festival's
    and the subprocesses' included: the cost on one core, whatever else the machine runs), ``per`` (hyp voice →
    ref voice → phone error rate of the collapsed 25 Hz frame tokens of the clean synthesis, summed edits /
    summed reference lengths),
    ``silence_low`` (voice → share of silence-labelled frames quieter than ``low_db`` below the utterance's
    loudest frame) and ``speech_low`` (the same share among speech-labelled frames).
    """
    import time

    from a2llm.data.phones import SILENCE_ID, collapse, edit_distance, frame_tokens

    def cpu() -> float:
        """CPU seconds of this process, its finished children (flite, sox) and the festival process."""
        t = os.times()
        total = t.user + t.system + t.children_user + t.children_system
        if _FESTIVAL is not None and _FESTIVAL.proc.poll() is None:
            with open(f"/proc/{_FESTIVAL.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return total

    tokens: dict[str, list[np.ndarray]] = {}
    seconds, cpu_seconds, silence_low, speech_low = {}, {}, {}, {}
    for voice in voices:
        speak_question(sentences[0], voice, np.random.default_rng(0))  # warm-up: imports, festival start
        start, start_cpu = time.perf_counter(), cpu()
        for i, text in enumerate(sentences):
            speak_question(text, voice, np.random.default_rng(i))
        seconds[voice] = (time.perf_counter() - start) / len(sentences)
        cpu_seconds[voice] = (cpu() - start_cpu) / len(sentences)
        tokens[voice], sil, sp = [], [], []
        for text in sentences:
            s = synthesize(text, voice)
            n = int(round(FPS * s.audio.size / s.sample_rate))
            tok = frame_tokens(s.phones, n)
            db = _frame_db(s.audio, s.sample_rate, n)
            tokens[voice].append(tok)
            sil.append(db[tok == SILENCE_ID] < low_db)
            sp.append(db[tok != SILENCE_ID] < low_db)
        silence_low[voice] = float(np.mean(np.concatenate(sil)))
        speech_low[voice] = float(np.mean(np.concatenate(sp)))
    per = {}
    for hyp in voices:
        per[hyp] = {}
        for ref in voices:
            pairs = [(collapse(h), collapse(r)) for h, r in zip(tokens[hyp], tokens[ref])]
            per[hyp][ref] = sum(edit_distance(h, r) for h, r in pairs) / sum(len(r) for _, r in pairs)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "per": per, "silence_low": silence_low,
            "speech_low": speech_low}


def main(argv: Sequence[str] | None = None) -> None:
    """Prints :func:`measure` over the first N questions of the nano templates (``--sentences N``, 30)."""
    import argparse

    from a2llm.data.nano.templates import TEMPLATES, TOPICS

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--voices", nargs="*", default=list(MEASURE_VOICES))
    args = parser.parse_args(argv)
    texts = [t.fill(TOPICS[i % len(TOPICS)])[0] for i, t in enumerate(TEMPLATES)][: args.sentences]
    m = measure(texts, args.voices)
    short = [v.split(":", 1)[1][:10] for v in args.voices]
    print(f"{len(texts)} questions; speak_question per question (default augmentation): wall and CPU seconds;")
    print("share of silence- and of speech-labelled 25 Hz frames more than 35 dB below the loudest (clean audio)")
    print(f"{'voice':32s} {'wall s':>7s} {'CPU s':>7s} {'silence quiet':>13s} {'speech quiet':>12s}")
    for v in args.voices:
        print(f"{v:32s} {m['seconds'][v]:7.3f} {m['cpu_seconds'][v]:7.3f} {m['silence_low'][v]:13.3f} "
              f"{m['speech_low'][v]:12.3f}")
    print("phone error rate (row = hypothesis, column = reference), collapsed 25 Hz frame tokens")
    print(" " * 32 + " ".join(f"{s:>10s}" for s in short))
    for h in args.voices:
        print(f"{h:32s}" + " ".join(f"{m['per'][h][r]:10.3f}" for r in args.voices))


if __name__ == "__main__":
    main()
