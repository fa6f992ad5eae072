"""English phone classes for espeak-ng mnemonics, their articulation, and 25 Hz phonetic frame tokens.

A²-LLM-nano's audio tokens are one phone class per 40 ms frame (DESIGN.md, "Two scales"). The classes are
the phonemes of espeak-ng's English tables (``phsource/ph_english`` and its en-us, en-rp, en-sc, en-n,
en-us-nyc, en-wi, en-wm overlays, espeak-ng 1.51), named by their canonical espeak mnemonic. Variants that
espeak-ng keeps apart only to steer its own rules are merged into the phoneme they are spoken as
(``I2`` → ``I``, ``@2``/``@5``/``a#`` → ``@``, ``t#``/``t2`` → ``t``, ``z/2`` → ``z``, ``i@3`` → ``i@`` ...);
diphthongs and the RP centring diphthongs keep classes of their own. The symbol list was collected
empirically (every phoneme event of the 8 English voices over espeak-ng's own English word list and
~7000 words of prose) and cross-checked against those tables. Mnemonics of other languages' tables (reachable
only through a language switch) map to an English stand-in where one is obvious, else fall back with a
warning (:func:`phone_name`).

Articulation values are for procedural visemes. They follow the standard viseme groupings — the MPEG-4
FBA viseme classes (ISO/IEC 14496-2: 1 p b m, 2 f v, 3 T D, 4 t d, 5 k g, 6 tS dZ S, 7 s z, 8 n l,
9 r, 10 A:, 11 e, 12 I, 13 Q, 14 U) and Preston Blair's mouth chart (AI, E, O, U, WQ, MBP, FV, L, etc, rest)
— with jaw opening graded by vowel height from the IPA vowel chart (open ≈ 0.85, open-mid ≈ 0.6,
close-mid ≈ 0.4, close ≈ 0.25) and lip rounding/spreading from the vowels' roundedness. They are
hand-set approximations, not measurements.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

# Frames per second of the phonetic tokens: the motion rate, so that token f and motion frame f coincide.
from a2llm.motion.layout import FPS

#: Phone classes in token order; id 0 is silence. Names are espeak-ng English mnemonics.
PHONES: tuple[str, ...] = (
    "_",
    # monophthong vowels
    "@", "3", "3:", "I", "i:", "E", "a", "A:", "0", "O:", "V", "U", "u:", "@L",
    # diphthongs and triphthongs
    "eI", "aI", "OI", "aU", "oU", "i@", "e@", "U@", "A@", "O@", "aI@", "aU@",
    # plosives and affricates
    "p", "b", "t", "d", "k", "g", "?", "tS", "dZ",
    # fricatives
    "f", "v", "T", "D", "s", "z", "S", "Z", "h",
    # nasals and approximants
    "m", "n", "N", "l", "r", "w", "j",
)  # fmt: skip

#: Token id of silence.
SILENCE_ID = 0

#: Class used for a mnemonic that is not English and has no English prefix (see phone_class).
FALLBACK = "@"

_INDEX = {name: i for i, name in enumerate(PHONES)}

# espeak-ng mnemonics that are not class names themselves → the class they are spoken as.
# Comments give the reason from the phoneme tables (phsource/ph_english*, phsource/phonemes).
ALIASES: dict[str, str] = {
    # schwas: @2 "the", @5 "to", @- very short, @# fronted (test), a# "about" (ɐ), a#2 "an", E# and 0# and
    # 0# reduce to @ when unstressed (oU# becomes oU unless reduced)
    "@2": "@", "@5": "@", "@-": "@", "@#": "@", "a#": "@", "a#2": "@", "E#": "@", "0#": "@", "oU#": "oU",
    "I2": "I", "I#": "I", "I2#": "I",  # unstressed / accent-dependent [I]
    "i": "i:", "u": "u:",  # happY vowel (tense); foreign pure [u]
    "E2": "E", "e#": "E", "e": "E", "e:": "E",  # e/e: are foreign pure [e]
    "a2": "a", "aa": "a", "A#": "a", "a/": "a",  # BATH: [a] (en-us) or [A:] (rp); espeak's ipa for aa is a
    "02": "0", "O2": "0",  # LOT variants (02 becomes V, O2 becomes 0 in en-us)
    "O": "O:", "o:": "oU", "o@": "O@", "i@3": "i@", "aI3": "aI@", "aI2": "aI",
    "A~": "A:", "O~": "O:",  # nasal vowels of French loans
    "IR": "3:", "VR": "3:",  # Scottish split NURSE ("ir", "ur")
    "t#": "t", "t2": "t", "t[": "t", "d#": "d", "d[": "d", "z#": "z", "z/2": "z",
    "x": "h", "C": "h",  # loch, huge: fricatives without a lip or jaw gesture of their own
    "w#": "w",  # ʍ "which" (Scottish)
    ";": "j",  # linking j between i and a vowel
    "r-": "r", "r/": "r", "R": "r", "R2": "r", "R3": "r", "r\"": "r", "r.": "r", "*": "r", "**": "r",
    "l/": "l", "l/2": "l", "l/3": "l", "L": "l", "l-": "@L",
    "m-": "m", "n-": "n", "N-": "N",  # syllabic nasals
    # base-table phonemes of other languages (reachable through a language switch) with an obvious
    # English stand-in; the rest fall back (phone_name)
    "o": "oU", "B": "b", "c": "k", "q": "k", "Q": "g", "J": "n", "X": "h",
}  # fmt: skip

# Stress and length marks that may precede or follow a mnemonic (espeak-ng forks that write stress into
# phoneme events use ' and ,; IPA output uses ˈ ˌ ː).
_STRESS = "'\u02c8,\u02cc%"


@dataclass(frozen=True)
class Articulation:
    """Articulatory features of a phone class, for procedural visemes (values 0..1 unless noted).

    Attributes:
        jaw: jaw opening, 0 closed … 1 wide open (/a/ ≈ 0.85, /i/ ≈ 0.25, /p/ 0.05).
        closure: 1 for full lip closure (p b m).
        labiodental: 1 when the lower lip touches the upper teeth (f v).
        round: lip rounding/protrusion (u, o, w; ʃ ʒ tʃ dʒ r partly).
        spread: lip spreading/stretch (i, e).
        tongue_visible: 1 when the tongue tip shows between the teeth (θ ð).
        voiced: vocal folds vibrate.
        vowel: the class is a vowel (or diphthong, or syllabic @L).
        viseme: MPEG-4 viseme number (0 none/silence, 1..14; diphthongs use their start).
        glide_to: for diphthongs, the class whose articulation the phone moves to by its end; else None.
    """

    jaw: float
    closure: float = 0.0
    labiodental: float = 0.0
    round: float = 0.0
    spread: float = 0.0
    tongue_visible: float = 0.0
    voiced: bool = True
    vowel: bool = False
    viseme: int = 0
    glide_to: str | None = None


def _v(jaw: float, rnd: float, spread: float, viseme: int, glide_to: str | None = None) -> Articulation:
    return Articulation(jaw=jaw, round=rnd, spread=spread, vowel=True, viseme=viseme, glide_to=glide_to)


def _c(jaw: float, viseme: int, voiced: bool, **features: float) -> Articulation:
    return Articulation(jaw=jaw, voiced=voiced, viseme=viseme, **features)


ARTICULATION: dict[str, Articulation] = {
    "_": Articulation(jaw=0.05, voiced=False),  # rest: mouth closed, relaxed
    # vowels: jaw from height; rounding from roundedness; spread for front unrounded vowels
    "@": _v(0.40, 0.0, 0.0, 11),  # mid central
    "3": _v(0.35, 0.1, 0.0, 11),  # lettER, rhotic in en-us
    "3:": _v(0.40, 0.15, 0.05, 11),  # NURSE
    "I": _v(0.30, 0.0, 0.50, 12),
    "i:": _v(0.25, 0.0, 0.80, 12),
    "E": _v(0.55, 0.0, 0.50, 11),
    "a": _v(0.80, 0.0, 0.30, 10),  # TRAP
    "A:": _v(0.90, 0.0, 0.0, 10),  # PALM, open back
    "0": _v(0.80, 0.35, 0.0, 13),  # LOT (rounded ɒ in RP)
    "O:": _v(0.60, 0.70, 0.0, 13),  # THOUGHT
    "V": _v(0.65, 0.0, 0.0, 10),  # STRUT
    "U": _v(0.35, 0.60, 0.0, 14),  # FOOT
    "u:": _v(0.25, 0.90, 0.0, 14),  # GOOSE
    "@L": _v(0.35, 0.0, 0.0, 8),  # syllabic l: tongue up, jaw mid-close
    "eI": _v(0.50, 0.0, 0.50, 11, "I"),
    "aI": _v(0.85, 0.0, 0.20, 10, "I"),
    "OI": _v(0.60, 0.70, 0.0, 13, "I"),
    "aU": _v(0.85, 0.0, 0.10, 10, "U"),
    "oU": _v(0.50, 0.60, 0.0, 13, "U"),
    "i@": _v(0.30, 0.0, 0.60, 12, "@"),
    "e@": _v(0.55, 0.0, 0.40, 11, "@"),
    "U@": _v(0.35, 0.60, 0.0, 14, "@"),
    "A@": _v(0.85, 0.0, 0.0, 10, "3"),  # START (+ r colouring in en-us)
    "O@": _v(0.60, 0.70, 0.0, 13, "3"),  # NORTH/FORCE
    "aI@": _v(0.85, 0.0, 0.20, 10, "@"),
    "aU@": _v(0.85, 0.0, 0.10, 10, "@"),
    # plosives and affricates (viseme 1 p b m, 4 t d, 5 k g, 6 tS dZ S)
    "p": _c(0.05, 1, False, closure=1.0),
    "b": _c(0.05, 1, True, closure=1.0),
    "t": _c(0.20, 4, False),
    "d": _c(0.20, 4, True),
    "k": _c(0.30, 5, False),
    "g": _c(0.30, 5, True),
    "?": _c(0.30, 0, False),  # glottal stop: no oral gesture
    "tS": _c(0.20, 6, False, round=0.50),
    "dZ": _c(0.20, 6, True, round=0.50),
    # fricatives (2 f v, 3 T D, 7 s z, 6 S Z)
    "f": _c(0.15, 2, False, labiodental=1.0),
    "v": _c(0.15, 2, True, labiodental=1.0),
    "T": _c(0.20, 3, False, tongue_visible=1.0),
    "D": _c(0.20, 3, True, tongue_visible=1.0),
    "s": _c(0.15, 7, False, spread=0.30),
    "z": _c(0.15, 7, True, spread=0.30),
    "S": _c(0.20, 6, False, round=0.50),
    "Z": _c(0.20, 6, True, round=0.50),
    "h": _c(0.40, 0, False),  # takes the shape of the next vowel; mid-open here
    # nasals and approximants (1 m, 8 n l, 9 r)
    "m": _c(0.05, 1, True, closure=1.0),
    "n": _c(0.20, 8, True),
    "N": _c(0.30, 5, True),
    "l": _c(0.30, 8, True),
    "r": _c(0.30, 9, True, round=0.40),
    "w": _c(0.20, 14, True, round=0.90),
    "j": _c(0.25, 12, True, spread=0.60),
}

_warned: set[str] = set()


def _normalise(symbol: str) -> str:
    return symbol.strip().strip(_STRESS).replace("\u02d0", ":")


def _lookup(symbol: str) -> str | None:
    """The class name of an espeak mnemonic, or None when it has none."""
    if symbol in _INDEX:
        return symbol
    if symbol in ALIASES:
        return ALIASES[symbol]
    if symbol.endswith(":") and symbol[:-1] in _INDEX:  # a length mark on a class that has no long form
        return symbol[:-1]
    return None


def phone_name(symbol: str) -> str:
    """The class name (an entry of PHONES) for an espeak-ng phoneme mnemonic.

    Stress marks are stripped; every pause ("_", "_:", "_!", ...) is silence. A mnemonic with no class
    of its own (one that only a language switch inside a word produces) maps to its longest prefix that
    has a class, else to ``FALLBACK`` ("@", a neutral mid vowel), with a warning the first time.

    Args:
        symbol: espeak-ng mnemonic, e.g. "A:", "'aI", "t#", "_:".

    Returns:
        A name in PHONES.
    """
    if not isinstance(symbol, str):
        raise TypeError(f"phone symbol must be a str, got {type(symbol).__name__}")
    sym = _normalise(symbol)
    if not sym or sym.startswith("_"):
        return PHONES[SILENCE_ID]
    name = _lookup(sym)
    if name is not None:
        return name
    prefix = next((n for k in range(len(sym) - 1, 0, -1) if (n := _lookup(sym[:k])) is not None), None)
    name = prefix if prefix is not None else FALLBACK
    if symbol not in _warned:
        _warned.add(symbol)
        warnings.warn(f"espeak-ng phoneme {symbol!r} has no English phone class; using {name!r}", stacklevel=3)
    return name


def phone_class(symbol: str) -> int:
    """The token id (index into PHONES) of an espeak-ng phoneme mnemonic; see :func:`phone_name`."""
    return _INDEX[phone_name(symbol)]


def articulation(symbol: str) -> Articulation:
    """Articulatory features of an espeak-ng phoneme mnemonic (or of a class name)."""
    return ARTICULATION[phone_name(symbol)]


def frame_tokens(phonemes: Sequence, num_frames: int | None = None, fps: int = FPS) -> np.ndarray:
    """Phonetic frame tokens: the class of the phone that covers each frame's centre.

    Frame f covers [f/fps, (f+1)/fps); its token is the class of the phone whose [start, end) holds the
    centre (f + 0.5)/fps. Frames whose centre no phone covers (gaps, before the first or after the last
    phone) are silence.

    Args:
        phonemes: phones in time order, each with ``symbol``, ``start``, ``end`` in seconds (e.g.
            :class:`a2llm.data.espeak.Phone`) or a ``(symbol, start, end)`` tuple; they must not overlap.
        num_frames: number of frames; default round(fps × end of the last phone).
        fps: frames per second.

    Returns:
        [num_frames] int64 token ids.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    symbols, starts, ends = _unpack(phonemes)
    if num_frames is None:
        num_frames = int(round(fps * ends[-1])) if ends.size else 0
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    centres = (np.arange(num_frames) + 0.5) / fps
    classes = np.array([phone_class(s) for s in symbols], dtype=np.int64)
    tokens = np.full(num_frames, SILENCE_ID, dtype=np.int64)
    if classes.size == 0:
        return tokens
    idx = np.searchsorted(starts, centres, side="right") - 1
    covered = (idx >= 0) & (centres < ends[np.clip(idx, 0, None)])
    tokens[covered] = classes[idx[covered]]
    return tokens


def _unpack(phonemes: Sequence) -> tuple[list[str], np.ndarray, np.ndarray]:
    symbols, starts, ends = [], [], []
    for i, ph in enumerate(phonemes):
        if isinstance(ph, (tuple, list)):
            if len(ph) != 3:
                raise ValueError(f"phone {i} must be (symbol, start, end), got {ph!r}")
            symbol, start, end = ph
        else:
            symbol, start, end = ph.symbol, ph.start, ph.end
        symbols.append(symbol)
        starts.append(float(start))
        ends.append(float(end))
    s, e = np.asarray(starts), np.asarray(ends)
    if np.any(e < s):
        i = int(np.flatnonzero(e < s)[0])
        raise ValueError(f"phone {i} ({symbols[i]!r}) ends before it starts: [{s[i]}, {e[i]})")
    if s.size > 1 and np.any(s[1:] < e[:-1] - 1e-9):
        i = int(np.flatnonzero(s[1:] < e[:-1] - 1e-9)[0]) + 1
        raise ValueError(f"phones must be in time order without overlap; phone {i} starts at {s[i]} "
                         f"before phone {i - 1} ends at {e[i - 1]}")  # fmt: skip
    return symbols, s, e


def collapse(tokens: Iterable[int]) -> list[int]:
    """Merges runs of equal tokens, then drops silence: the phone sequence of a frame-token track.

    Repeats are merged before silence is dropped, so a phone said twice with a pause between
    ([a, _, a]) stays two phones.

    Args:
        tokens: [T] token ids.

    Returns:
        The collapsed phone ids.
    """
    arr = np.asarray(list(tokens) if not isinstance(tokens, np.ndarray) else tokens, dtype=np.int64).reshape(-1)
    if arr.size == 0:
        return []
    keep = np.ones(arr.size, dtype=bool)
    keep[1:] = arr[1:] != arr[:-1]
    runs = arr[keep]
    return runs[runs != SILENCE_ID].tolist()


def edit_distance(hyp: Sequence[int], ref: Sequence[int]) -> int:
    """Levenshtein distance (unit substitution, insertion and deletion costs) between two id sequences."""
    a = np.asarray(hyp, dtype=np.int64)
    b = np.asarray(ref, dtype=np.int64)
    row = np.arange(b.size + 1)
    offsets = np.arange(b.size + 1)
    for i, token in enumerate(a, start=1):
        new = np.empty_like(row)
        new[0] = i
        # deletion of hyp[i] (from the row above) or substitution/match (diagonal)
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != token))
        # insertions run along the row: new[j] = min_k<=j (new[k] + j - k), a running minimum
        row = np.minimum.accumulate(new - offsets) + offsets
    return int(row[-1])


def phone_error_rate(hyp_tokens: Iterable[int], ref_tokens: Iterable[int]) -> float:
    """Phone error rate: edit distance between the collapsed sequences over the reference length.

    Args:
        hyp_tokens: [T1] hypothesis frame tokens.
        ref_tokens: [T2] reference frame tokens (any length; both are collapsed first).

    Returns:
        (substitutions + insertions + deletions) / len(collapse(ref_tokens)); may exceed 1.
    """
    hyp, ref = collapse(hyp_tokens), collapse(ref_tokens)
    if not ref:
        raise ValueError("reference tokens contain no phones (only silence); the phone error rate is undefined")
    return edit_distance(hyp, ref) / len(ref)
