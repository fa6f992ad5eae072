"""Offline speech synthesis with per-phoneme timings, through libespeak-ng and ctypes.

The FLAME-QA-nano corpus needs, for every answer, the speech, when each phone starts and ends (procedural
visemes are driven by them) and the 25 Hz phonetic frame tokens (:mod:`a2llm.data.phones`). espeak-ng reports
phoneme timings as phoneme events of its C library API (its command line prints phoneme strings without
times), so this module binds ``libespeak-ng.so.1`` directly; no subprocess, no mbrola.

The binding follows the public header ``speak_lib.h`` (API revision 12, unchanged in espeak-ng 1.51):
synthesis runs in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with ``espeakINITIALIZE_PHONEME_EVENTS``, so
``espeak_Synth`` returns only when the whole text is spoken, and the synth callback receives, chunk by
chunk, int16 samples and the events (word, sentence, phoneme, end) with their ``audio_position`` in ms.

Thread safety: libespeak-ng keeps one global synthesizer per process (voice, parameters, callback), and is
not re-entrant. Every call here holds one module-level lock, and the library is initialised lazily, once, on
the first call. Threads therefore serialise; for parallel corpus generation use processes (each process
initialises its own copy on first use).

Voice names accepted by :func:`synthesize`: an espeak-ng voice (file name, identifier or name: "en-us",
"gmw/en-US", "English (America)") or a language code ("en-gb", "en-gb-x-rp", "en-029"), optionally
followed by ``+variant`` with a variant from :func:`list_variants` ("en-us+f3", "en+m3", "en-gb+f2",
"en-gb-x-rp+f4", "en-us+whisper"); all 101 variants of espeak-ng 1.51 load on en-us and en-gb. Names are
checked against espeak_ListVoices before anything reaches the library, because plain
``espeak_SetVoiceByName`` rejects codes without a voice file of their own (notably "en-gb", whose file is
``gmw/en``; those go through ``espeak_SetVoiceByProperties``), silently ignores unknown variants, and,
given a bare variant name such as "f3", loads a voice with no language that crashes the next synthesis.
mbrola voices are refused (no mbrola here).

Reproducibility: espeak-ng's wave generator keeps state between calls (pitch flutter, breath noise, wave
phase), so the same call gives slightly different samples and phone boundaries that differ by up to one
pitch period (~10 ms) depending on what was synthesised before.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

#: Phone symbol used for every pause (espeak-ng's "_", "_:", "_!" ...) and for the leading silence.
SILENCE = "_"

# --- constants from speak_lib.h ----------------------------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
# Without this flag espeak_Initialize calls exit() when its data folder is missing, killing Python.
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK, _EE_INTERNAL_ERROR, _EE_BUFFER_FULL, _EE_NOT_FOUND = 0, -1, 1, 2

_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_MARK = 3
_EVENT_PLAY = 4
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_EVENT_SAMPLERATE = 8

_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4

#: Accepted parameter ranges (speak_lib.h: rate 80..450 wpm, volume 0..200, pitch and range 0..100).
RATE_RANGE = (80, 450)
VOLUME_RANGE = (0, 200)
PITCH_RANGE = (0, 100)

# Length in ms of the audio chunks handed to the callback. Longer chunks mean fewer Python callbacks.
_BUFFER_MS = 500

# Shortest run of digital silence (exact zeros) that _align_silences moves across a phone boundary;
# shorter zero runs can occur by chance inside voiced audio.
_MIN_ZERO_RUN_S = 0.005

_INSTALL_HINT = "install it with `apt-get install espeak-ng libespeak-ng1`"


class EspeakError(RuntimeError):
    """libespeak-ng is missing, failed, or was given a voice it does not know."""


class _EventId(ctypes.Union):
    # number: WORD/SENTENCE index; name: MARK/PLAY (UTF-8); string: phoneme mnemonic (UTF-8, NUL-terminated
    # unless all 8 bytes are used).
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # espeak_EVENT; the first field is the espeak_EVENT_TYPE enum (an int in the C ABI).
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the text
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms from the start of the synthesised audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    # espeak_VOICE. `languages` is a packed list (priority byte, NUL-terminated name)*, ended by a zero
    # priority, so it is read from a raw pointer: a c_char_p would stop at the first NUL.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phone:
    """One phone of an utterance.

    Attributes:
        symbol: espeak-ng phoneme mnemonic as reported by its phoneme events ("p", "A:", "oU", "i@3"),
            or ``SILENCE`` ("_") for pauses. Map it to a class with :func:`a2llm.data.phones.phone_class`.
        start: start time in seconds from the start of the audio.
        end: end time in seconds (the next phone's start; the last phone ends at the end of the audio).
    """

    symbol: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Word:
    """A word event: espeak-ng starts speaking a word.

    Attributes:
        index: espeak-ng's running word number (1-based; numbers spoken as several words repeat or skip).
        text_position: 0-based character offset of the word in the synthesised text.
        length: length of the word in characters.
        start: time in seconds at which the word starts.
    """

    index: int
    text_position: int
    length: int
    start: float


@dataclass(frozen=True, eq=False)
class Utterance:
    """Synthesised speech with its phone and word timings.

    Attributes:
        audio: [N] float32 mono speech in [-1, 1].
        sample_rate: samples per second of ``audio`` (22050 for espeak-ng).
        phonemes: phones in time order; they tile ``[0, duration]`` exactly (first start 0, each end is the
            next start, last end == duration), no zero-length phones, consecutive pauses merged into one "_".
            Times come from the phoneme events' ``audio_position`` (ms), with a stop's closure silence moved
            into the stop (see ``_align_silences``).
        words: word events in time order (those with a non-empty span in the text).
        text: the text that was spoken.
        voice: the voice name it was spoken with.
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: tuple[Phone, ...]
    words: tuple[Word, ...]
    text: str
    voice: str

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return self.audio.shape[0] / self.sample_rate

    def word_text(self, word: Word) -> str:
        """The characters of ``text`` that ``word`` spans."""
        return self.text[word.text_position : word.text_position + word.length]


class _Engine:
    """The process-global libespeak-ng synthesizer. Use only while holding ``_LOCK``."""

    def __init__(self) -> None:
        self.lib = _load_library()
        self._declare_signatures()
        # Kept as an attribute: the C library holds this pointer, so it must outlive every synthesis.
        self._callback = _SynthCallback(self._on_audio)
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(
                f"espeak_Initialize failed (returned {rate}); its data folder (espeak-ng-data) was not found — "
                f"{_INSTALL_HINT}, or point the ESPEAK_DATA_PATH environment variable at the folder holding it"
            )
        self.sample_rate = int(rate)
        self.lib.espeak_SetSynthCallback(self._callback)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, int, int | str]] = []
        self._resolved: dict[str, str] = {}

    def _declare_signatures(self) -> None:
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
        lib.espeak_GetCurrentVoice.argtypes = []
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

    def _on_audio(self, wav, num_samples: int, events) -> int:
        # Called from inside espeak_Synth, on this thread. Copy everything: the buffers are reused.
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                payload: int | str = ev.id.string.decode("utf-8", errors="replace")
            else:
                payload = ev.id.number if ev.type in (_EVENT_WORD, _EVENT_SENTENCE) else 0
            self._events.append((ev.type, ev.text_position, ev.length, ev.audio_position, payload))
            if ev.type == _EVENT_MSG_TERMINATED:
                break
            i += 1
        return 0  # 0 = continue synthesis

    # --- voices ----------------------------------------------------------------------------------------
    def list_voices(self, language: str | None) -> list[_Voice]:
        if language is None:
            array = self.lib.espeak_ListVoices(None)
        else:
            spec, _keep = _voice_spec(language)
            array = self.lib.espeak_ListVoices(ctypes.byref(spec))
        voices = []
        i = 0
        while array[i]:
            voices.append(array[i].contents)
            i += 1
        return voices

    def current_identifier(self) -> str:
        return self.lib.espeak_GetCurrentVoice().contents.identifier.decode()

    def set_voice(self, voice: str) -> None:
        identifier = self._resolved.get(voice)
        if identifier is None:
            identifier = self._resolve(voice)
            self._resolved[voice] = identifier
        if self.lib.espeak_SetVoiceByName(identifier.encode()) != _EE_OK:
            raise EspeakError(f"espeak_SetVoiceByName({identifier!r}) failed for voice {voice!r}")

    def _resolve(self, voice: str) -> str:
        """Turns a voice name into the identifier (file name + optional "+variant") espeak-ng loads."""
        base, _, variant = voice.partition("+")
        if not base:
            raise ValueError(f"voice {voice!r} has no language or voice name before '+'; expected e.g. 'en-us+f3'")
        identifier = self._find_voice(base)
        if identifier is None:
            # Not a voice of its own: a language code ("en-gb"), for which espeak-ng picks its preferred voice.
            spec, _keep = _voice_spec(base)
            chosen = None
            if self.lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) == _EE_OK:
                current = self.lib.espeak_GetCurrentVoice().contents
                if _speaks(current, base):
                    chosen = current.identifier.decode()
            if chosen is None or chosen.startswith(("mb/", "!v/")):
                raise ValueError(
                    f"unknown espeak-ng voice {base!r} (from {voice!r}); expected a language code or voice name "
                    f"such as {', '.join(_voice_names(self, 'en')[:4])} (see list_voices()), optionally with "
                    f"'+variant' (see list_variants())"
                )
            identifier = chosen
        if variant:
            variants = {v.identifier.decode().removeprefix("!v/") for v in self.list_voices("variant")}
            if variant not in variants:
                # espeak-ng silently ignores unknown variants; a typo would go unnoticed in a corpus.
                raise ValueError(
                    f"unknown espeak-ng voice variant {variant!r} in {voice!r}; expected one of {sorted(variants)}"
                )
            identifier = f"{identifier}+{variant}"
        return identifier

    def _find_voice(self, name: str) -> str | None:
        """The identifier of espeak-ng's own voice called ``name`` (identifier, file name or voice name).

        Arbitrary names never reach espeak_SetVoiceByName: given a variant's name ("f3") it loads the
        variant as a voice without a language and the next synthesis crashes the process.
        """
        wanted = name.lower()
        for v in self.list_voices(None):
            identifier = v.identifier.decode()
            if identifier.startswith(("mb/", "!v/")):
                continue  # mbrola voices need the mbrola program; variants are not voices
            names = {identifier.lower(), identifier.rsplit("/", 1)[-1].lower(), v.name.decode().lower()}
            if wanted in names:
                return identifier
        return None

    # --- synthesis -------------------------------------------------------------------------------------
    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, volume: int) -> Utterance:
        self.set_voice(voice)
        params = ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range), (_PARAM_VOLUME, volume))
        for param, value in params:
            if self.lib.espeak_SetParameter(param, value, 0) != _EE_OK:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status} for text {text[:60]!r}")
        self.lib.espeak_Synchronize()
        chunks, events = self._chunks, self._events
        self._chunks, self._events = [], []
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        audio = pcm.astype(np.float32) / np.float32(32768.0)
        duration = audio.shape[0] / self.sample_rate
        phonemes = _align_silences(_phones_from_events(events, duration), pcm, self.sample_rate)
        words = tuple(
            Word(index=int(n), text_position=pos - 1, length=length, start=ms / 1000.0)
            for kind, pos, length, ms, n in events
            if kind == _EVENT_WORD and length > 0
        )
        return Utterance(audio, self.sample_rate, phonemes, words, text, voice)


def _load_library() -> ctypes.CDLL:
    names = [ctypes.util.find_library("espeak-ng"), "libespeak-ng.so.1", "libespeak-ng.so"]
    errors = []
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as err:
            errors.append(str(err))
    raise EspeakError(f"libespeak-ng was not found ({'; '.join(errors) or 'no candidate'}); {_INSTALL_HINT}")


def _voice_spec(language: str) -> tuple[_Voice, ctypes.Array]:
    """An espeak_VOICE asking for ``language``; the returned buffer must stay alive while the spec is used."""
    buffer = ctypes.create_string_buffer(language.encode())
    spec = _Voice()
    spec.languages = ctypes.cast(buffer, ctypes.c_void_p)
    return spec, buffer


def _languages(voice: _Voice) -> list[str]:
    """Decodes the packed (priority byte, name) list of an espeak_VOICE, in order."""
    out: list[str] = []
    address = voice.languages
    if not address:
        return out
    while ctypes.c_ubyte.from_address(address).value != 0:
        name = ctypes.string_at(address + 1)
        out.append(name.decode("utf-8", errors="replace"))
        address += 2 + len(name)
    return out


def _speaks(voice: _Voice, language: str) -> bool:
    # SetVoiceByProperties falls back to some voice for an unknown language; accept only a real match.
    language = language.lower()
    return any(lang == language or lang.startswith(language + "-") for lang in _languages(voice))


def _phones_from_events(events: list, duration: float) -> tuple[Phone, ...]:
    """Builds the tiling phone sequence from raw phoneme events ``(type, pos, length, ms, symbol)``."""
    marks = [
        (ms / 1000.0, SILENCE if sym.startswith("_") else sym)
        for kind, _, _, ms, sym in events
        if kind == _EVENT_PHONEME
    ]
    starts = [t for t, _ in marks]
    if any(b < a for a, b in zip(starts, starts[1:])):
        raise EspeakError(f"espeak-ng phoneme events are not in time order: {marks}")
    # espeak-ng opens every utterance with a short pause that has no phoneme event of its own.
    if not marks or marks[0][0] > 0.0:
        marks.insert(0, (0.0, SILENCE))
    phones: list[Phone] = []
    for i, (start, symbol) in enumerate(marks):
        start = min(start, duration)
        end = min(marks[i + 1][0], duration) if i + 1 < len(marks) else duration
        if end <= start:
            continue  # zero-length marks (e.g. the final "_" at the very end) carry no time
        if phones and symbol == SILENCE and phones[-1].symbol == SILENCE:
            phones[-1] = Phone(SILENCE, phones[-1].start, end)
        else:
            phones.append(Phone(symbol, start, end))
    return tuple(phones)


def _voice_names(engine: _Engine, language: str) -> list[str]:
    """Primary language codes of espeak-ng's own voices for ``language``, in preference order."""
    names: list[str] = []
    for voice in engine.list_voices(language):
        identifier = voice.identifier.decode()
        langs = _languages(voice)
        if identifier.startswith(("mb/", "!v/")) or not langs or not _speaks(voice, language):
            continue
        if langs[0] not in names:
            names.append(langs[0])
    return names


def _align_silences(phones: tuple[Phone, ...], pcm: np.ndarray, rate: int) -> tuple[Phone, ...]:
    """Moves phone boundaries over runs of digital silence to the phone the silence belongs to.

    Two places where espeak-ng's events and its audio disagree:

    * Generate() emits a phone's ``prepause`` — the closure of a stop (~40 ms for p t k, ~30 ms for b d)
      and short word gaps — *before* that phone's event, so the events put a stop's closure in the
      previous phone. Lip closure for p/b happens during that silence, so it is given back to the stop, the
      way phonetic segmentations (e.g. TIMIT) count the closure as part of the stop.
    * Before a pause, the wave generator's state from earlier calls can leave 0-40 ms of zeros after the
      last sound and before the pause event; that silence is given to the pause, so the timings do not
      depend on what was synthesised before.

    Only runs of exact zero samples of at least ``_MIN_ZERO_RUN_S`` count, and a phone always keeps its
    non-silent audio.

    Args:
        phones: tiling phones from the events.
        pcm: [N] int16 samples the phones tile.
        rate: sample rate in Hz.

    Returns:
        The phones with the same symbols, still tiling [0, duration].
    """
    out = list(phones)
    nonzero = pcm != 0
    min_run = _MIN_ZERO_RUN_S * rate
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if prev.symbol == SILENCE:
            continue
        first, boundary = int(round(prev.start * rate)), int(round(cur.start * rate))
        sounding = np.flatnonzero(nonzero[first:boundary])
        if sounding.size == 0:
            continue  # the previous phone is silent throughout: nothing to tell its own part from
        run_start = first + int(sounding[-1]) + 1
        if boundary - run_start < min_run:
            continue
        # prev -> phone: the zeros are cur's prepause; prev -> pause: they are part of the pause
        start = run_start / rate
        out[i - 1] = Phone(prev.symbol, prev.start, start)
        out[i] = Phone(cur.symbol, start, cur.end)
    return tuple(out)


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    """The lazily created global engine. Call only while holding ``_LOCK``."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name}={value} is out of range; expected {bounds[0]}..{bounds[1]}")
    return int(value)


def synthesize(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50, volume: int = 100
) -> Utterance:
    """Speaks ``text`` with espeak-ng and returns the audio with phone and word timings.

    Args:
        text: plain UTF-8 text (not SSML), at least one non-blank character.
        voice: language code or voice name, optionally with "+variant" (module docstring; list_voices()).
        rate: speaking rate in words per minute, 80..450.
        pitch: base pitch, 0..100 (50 = the voice's normal).
        pitch_range: pitch variation, 0..100 (0 = monotone, 50 = normal).
        volume: amplitude, 0..200 (100 = normal; higher values may clip).

    Returns:
        The utterance: audio [N] float32 at ``sample_rate`` Hz and its phones tiling [0, duration].

    Raises:
        ValueError: empty text, a parameter out of range, or an unknown voice/variant.
        EspeakError: libespeak-ng is not installed or fails.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    if "\0" in text:
        raise ValueError("text must not contain NUL characters (espeak-ng reads a NUL-terminated string)")
    if not isinstance(voice, str):
        raise TypeError(f"voice must be a str, got {type(voice).__name__}")
    rate = _check_range("rate", rate, RATE_RANGE)
    pitch = _check_range("pitch", pitch, PITCH_RANGE)
    pitch_range = _check_range("pitch_range", pitch_range, PITCH_RANGE)
    volume = _check_range("volume", volume, VOLUME_RANGE)
    with _LOCK:
        return _engine().synthesize(text, voice, rate, pitch, pitch_range, volume)


def sample_rate() -> int:
    """The sample rate of espeak-ng's output in Hz (from espeak_Initialize; 22050 for espeak-ng)."""
    with _LOCK:
        return _engine().sample_rate


def list_voices(language: str = "en") -> list[str]:
    """Voices espeak-ng itself can speak ``language`` with (mbrola voices and variants excluded).

    Args:
        language: language code to match ("en" matches "en-us", "en-gb-scotland", ...).

    Returns:
        The voices' own language codes, in espeak-ng's preference order ("en-gb", "en-us", ...); each is
        accepted by :func:`synthesize`, alone or with a "+variant" from :func:`list_variants`.
    """
    with _LOCK:
        return _voice_names(_engine(), language)


def list_variants() -> list[str]:
    """Names of espeak-ng's voice variants ("f1".."f5", "m1".."m8", "whisper", "croak", ...), sorted.

    Append one to a voice with "+": ``synthesize(text, voice="en-us+f3")``.
    """
    with _LOCK:
        return sorted(v.identifier.decode().removeprefix("!v/") for v in _engine().list_voices("variant"))
