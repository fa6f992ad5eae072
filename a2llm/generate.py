"""Whole-turn generation with an A²-LLM, batched: the path evaluation uses (the streaming engine is a2llm.engine).

    gen = Generator(model, text_tokenizer)
    answers = gen.answer(samples, task="aqaa")             # greedy; text, audio codes, motion per sample
    motion = gen.motion_for_reference(samples, "aqaa")     # motion on the reference answer's timeline

``answer`` prefills each prompt (everything up to and including ``<tts_start>``), then decodes one token per
step for all rows at once until each row emits ``<|EOT|>``: the text layout says which kinds of token may come
next (:class:`ReplyDecoder`; Step-Audio-2's "ta4": :class:`Ta4Slots`) and a :class:`Sampling` draws within them —
greedy by default for nano, the release's temperature 0.7 / top-p 0.9 / repetition penalty 1.05 for
Step-Audio-2 (:func:`default_sampling`). The last-layer hidden state of every
fed audio token is kept: the Motion Connector turns those into motion tokens, the RVQ decoder into FLAME
parameters, exactly as in training (the state right after the token is fed).

``motion_for_reference`` feeds the *reference* answer (teacher forcing) instead, so the motion is on the
reference speech's timeline and can be compared frame by frame with the ground truth (tables 3, 4, 6).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from a2llm.data.collate import TEXT_LAYOUTS, CollatorConfig, FlameQACollator, resolve_text_layout
from a2llm.data.format import FlameQASample, Turn
from a2llm.data.text import normalise_text  # noqa: F401  (re-exported: the answer comparison)
from a2llm.lalm.tokens import STEP_AUDIO2_LAYOUT, TokenLayout, is_step_audio2

#: How the connector's code predictions become motion (Generator / EngineConfig ``motion_decode``): the most likely
#: code per level (the paper's decoding), or the latent its distributions expect
#: (:meth:`a2llm.motion.rvq.MotionRVQVAE.expected_latent`), the default: on A²-LLM-nano it halves the upper face's
#: acceleration and lowers MOD and the upper-face error too (docs/TOKENIZER.md, "Expected codes").
MOTION_DECODES = ("codes", "expected")


def check_motion_decode(mode: str) -> str:
    """``mode`` if it is one of :data:`MOTION_DECODES`, else a ValueError naming them."""
    if mode not in MOTION_DECODES:
        raise ValueError(f"motion_decode must be one of {MOTION_DECODES}, got {mode!r}")
    return mode


def decode_prediction(tokenizer, tokens: torch.Tensor, logits: torch.Tensor, mode: str) -> np.ndarray:
    """A connector's prediction for one sequence — ``tokens`` [N, Nq], ``logits`` [N, Nq, K] — as motion
    [N * group, 58] through ``tokenizer``, the way ``mode`` (:data:`MOTION_DECODES`) says."""
    if mode == "expected":
        return tokenizer.decode_expected(logits.float().cpu())
    return tokenizer.decode(tokens.cpu().numpy())


@dataclass
class Answer:
    """One generated turn: ``text`` (the answer's text tokens decoded), ``audio_codes`` [n] (25 Hz),
    ``motion`` [n, 58] (25 fps, same timeline), ``tokens`` (every generated id, in order)."""

    text: str
    audio_codes: np.ndarray
    motion: np.ndarray
    tokens: list[int]


def layout_for(tokenizer) -> TokenLayout:
    """The token layout of a tokenizer: its ``<audio_k>`` tokens are the audio codes (6,561 if it names none).
    Step-Audio-2's tokenizer names 6,562: its last, ``<audio_6561>``, is the audio pad, not a code
    (``TokenLayout.audio_pad``)."""
    num = sum(1 for t in tokenizer.get_vocab() if re.fullmatch(r"<audio_\d+>", t))
    layout = TokenLayout.from_tokenizer(tokenizer, num or STEP_AUDIO2_LAYOUT.num_audio_codes)
    if is_step_audio2(layout) and layout.num_audio_codes != STEP_AUDIO2_LAYOUT.num_audio_codes:
        layout = TokenLayout.from_tokenizer(tokenizer, STEP_AUDIO2_LAYOUT.num_audio_codes)
    return layout


def text_layout_of(model, layout: TokenLayout | None = None) -> str:
    """The text layout a model's replies use: ``A2LLMConfig.text_layout`` ("chunked" for models without one),
    except that a Step-Audio-2 backbone always uses the released "ta4" layout
    (:func:`a2llm.data.collate.resolve_text_layout`; without ``layout``, recognised by its 158,720-token
    vocabulary)."""
    config = getattr(model, "config", None)
    mode = getattr(config, "text_layout", "chunked")
    if layout is None and getattr(getattr(config, "backbone", None), "vocab_size", None) == \
            STEP_AUDIO2_LAYOUT.vocab_size:
        layout = STEP_AUDIO2_LAYOUT
    return mode if layout is None else resolve_text_layout(mode, layout)


# ------------------------------------------------------------------------------------------------ sampling
@dataclass(frozen=True)
class Sampling:
    """How a token is drawn among those the text layout admits at a step (a ta4 text slot: text tokens only, an
    audio slot: audio codes only; see :class:`ReplyDecoder`).

    Attributes:
        temperature: 0 = greedy (the argmax; nano's default); > 0: draw from softmax(logits / temperature).
        top_p: nucleus: keep the most probable tokens until their probability reaches ``top_p`` (the token that
            crosses it is kept); 1 keeps all.
        top_k: keep the ``top_k`` most probable tokens (0: all).
        repetition_penalty: transformers' / vLLM's rule: the logit of every id already in the sequence (prompt
            and reply so far) is divided by it if positive, multiplied if negative; 1 = off. It applies in
            greedy mode too.
        seed: seeds the ``torch.Generator`` the draws come from, so a run is reproducible.

    Order (as transformers): repetition penalty, the layout's mask, temperature, top-k, top-p, draw.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature {self.temperature} must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p {self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError(f"top_k {self.top_k} must be >= 0 (0 = off)")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty {self.repetition_penalty} must be > 0 (1 = off)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def released(cls, seed: int = 0) -> "Sampling":
        """Step-Audio-2's published settings (the official examples for transformers and vLLM, and vox-serve's
        default): temperature 0.7, top-p 0.9, repetition penalty 1.05, no top-k."""
        return cls(temperature=0.7, top_p=0.9, repetition_penalty=1.05, seed=seed)


GREEDY = Sampling()


def default_sampling(text_layout: str) -> Sampling:
    """Full-size (Step-Audio-2, "ta4"): the release's :meth:`Sampling.released`; nano: greedy, as it was
    evaluated (docs/STEP_AUDIO2.md, "Sampling", has both on nano)."""
    return Sampling.released() if text_layout == "ta4" else GREEDY


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """[V] logits with every ``seen`` ([V] bool) id's logit divided by ``penalty`` if positive, multiplied if
    negative (so the id always gets less likely for penalty > 1)."""
    if penalty == 1:
        return logits
    return torch.where(seen, torch.where(logits > 0, logits / penalty, logits * penalty), logits)


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """[V] logits with all but the ``k`` largest set to -inf (k = 0: unchanged)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    return logits.masked_fill(logits < torch.topk(logits, k).values[-1], float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """[V] logits with the tail outside the nucleus set to -inf: a token is dropped once the more probable
    tokens already hold ``top_p`` of the probability (the most probable token always stays)."""
    if top_p >= 1:
        return logits
    probs = torch.softmax(logits, -1)
    V = probs.shape[-1]
    k = min(256, V)
    while True:          # the nucleus is usually small: sort only the top k, widened until it holds top_p
        top, order = probs.topk(k)
        if k == V or float(top.sum()) >= top_p:
            break
        k = min(4 * k, V)
    keep_sorted = (top.cumsum(-1) - top) < top_p
    keep_sorted[0] = True
    keep = torch.zeros(V, dtype=torch.bool, device=logits.device)
    keep[order[keep_sorted]] = True
    return logits.masked_fill(~keep, float("-inf"))


def sample_token(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None,
                 allowed: torch.Tensor | None = None, seen: torch.Tensor | None = None) -> int:
    """One token from [V] logits: repetition penalty over ``seen`` ([V] bool), only ``allowed`` ids ([V] bool;
    None: all), then the argmax (temperature 0) or a draw after temperature, top-k and top-p."""
    x = logits.float()
    if seen is not None:
        x = apply_repetition_penalty(x, seen, sampling.repetition_penalty)
    if allowed is not None:
        x = x.masked_fill(~allowed, float("-inf"))
    if sampling.greedy:
        return int(x.argmax())
    x = filter_top_p(filter_top_k(x / sampling.temperature, sampling.top_k), sampling.top_p)
    return int(torch.multinomial(torch.softmax(x, -1), 1, generator=generator))


class Picker:
    """Draws the tokens of one sequence under a :class:`Sampling`, remembering the ids seen so far (``seen``: the
    prompt's; then every :meth:`feed` token) for the repetition penalty. ``generator``: the draws' source
    (shared by the rows of a batch, or by an engine's turns); None: one seeded from ``sampling.seed`` on first
    use."""

    def __init__(self, sampling: Sampling = GREEDY, generator: torch.Generator | None = None,
                 seen: Sequence[int] = ()):
        self.sampling, self.generator = sampling, generator
        self._seen_ids = [int(t) for t in seen]
        self._seen: torch.Tensor | None = None

    def _seen_mask(self, logits: torch.Tensor) -> torch.Tensor | None:
        if self.sampling.repetition_penalty == 1:
            return None
        if self._seen is None or self._seen.shape[-1] != logits.shape[-1] or self._seen.device != logits.device:
            self._seen = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            ids = [t for t in self._seen_ids if 0 <= t < logits.shape[-1]]
            self._seen[torch.tensor(ids, dtype=torch.long, device=logits.device)] = True
        return self._seen

    def pick(self, logits: torch.Tensor, allowed: torch.Tensor | None = None) -> int:
        """One token from [V] logits among ``allowed`` ([V] bool; None: any)."""
        if self.generator is None and not self.sampling.greedy:
            self.generator = torch.Generator(device=logits.device).manual_seed(self.sampling.seed)
        return sample_token(logits, self.sampling, self.generator, allowed, self._seen_mask(logits))

    def feed(self, token: int) -> None:
        self._seen_ids.append(int(token))
        if self._seen is not None and 0 <= token < self._seen.shape[-1]:
            self._seen[token] = True


@functools.lru_cache(maxsize=32)
def kind_masks(layout: TokenLayout, vocab: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """([V] text, [V] audio) bool masks over a ``vocab``-wide logit vector: text ids (``layout.is_text``) and the
    audio codes (no pad). Cached per layout, width and device."""
    ids = torch.arange(vocab, device=device)
    audio = (ids >= layout.audio_offset) & (ids < layout.audio_offset + layout.num_audio_codes)
    text = ids < layout.text_end
    text[[t for t in (layout.endoftext, layout.bot, layout.eot) if t < vocab]] = False
    return text, audio


def prefers_text(logits: torch.Tensor, layout: TokenLayout) -> bool:
    """Word layout: would the model rather write than speak at this step? Compares probability mass — some
    non-audio token vs some audio code — not best logits: which word comes next is spread over the vocabulary
    even when writing is surely due (best-logit comparison placed text late: forced-text PER 125 % vs 87 %)."""
    a0, a1 = layout.audio_offset, layout.audio_offset + layout.num_audio_codes
    other = torch.cat([logits[:a0], logits[a1:]])
    return bool(torch.logsumexp(other, 0) > torch.logsumexp(logits[a0:a1], 0))


def best_text_token(logits: torch.Tensor, layout: TokenLayout) -> int:
    """The best non-audio token of [V] logits (a text piece or a special token such as ``<tts_end>``)."""
    other = logits.clone()
    other[layout.audio_offset:layout.audio_offset + layout.num_audio_codes] = float("-inf")
    return int(other.argmax())


def word_start_mask(tokenizer) -> torch.Tensor:
    """[len(tokenizer)] bool: the text tokens that begin a word — SentencePiece's "▁" (nano's BPE) or byte-level
    BPE's "Ġ" (Qwen's) in front of the piece."""
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return torch.tensor([bool(p) and p[0] in "\u2581\u0120" for p in pieces], dtype=torch.bool)


class WordPacing:
    """Forced text (:class:`TextSchedule`, word layout): a word's text token goes right before the word's first
    speech frame, so the next *word* of the given text is placed only once the current one has ``min_frames``
    frames of speech (pieces of the same word and punctuation may follow at once).

    Why: placed whenever the model would rather write than speak, a given text it had not memorised was sometimes
    written several words in a row and only the last spoken ("is planned for next" -> "next"): TTS PER on 160
    held-out-template answers 34.2 %, with this rule 22.3 % (ninth session). 95 % of the training layout's word
    starts keep it; the rest are words espeak-ng gave no word event of their own ("did not"), which share a frame —
    so :class:`TextSchedule` still places a held word at once when it is the model's own best text token (without
    that exception, PER on seen-template answers rose from 0.7 to 3.6 %).

    State: speech frames since the last word-start token (None before the first); :meth:`feed` every token.
    """

    def __init__(self, word_start: torch.Tensor, layout: TokenLayout, min_frames: int = 1):
        self.word_start, self.L, self.min_frames = word_start, layout, min_frames
        self.frames: int | None = None

    def may_start_word(self) -> bool:
        return self.frames is None or self.frames >= self.min_frames

    def starts_word(self, token: int) -> bool:
        return 0 <= token < len(self.word_start) and bool(self.word_start[token])

    def feed(self, token: int) -> None:
        if self.L.is_audio(token):
            self.frames = None if self.frames is None else self.frames + 1
        elif self.starts_word(token):
            self.frames = 0


def next_token(logits: torch.Tensor, layout: TokenLayout, text_layout: str = "chunked") -> int:
    """Greedy choice of one free-running step from [V] logits. "chunked": the argmax. "word": first speak or
    write (:func:`prefers_text`), then the best token of that kind. ("ta4" needs the reply's slot state:
    :class:`ReplyDecoder`, which also samples.) (No :class:`WordPacing` here: when the model
    writes freely it keeps its own words in step with its speech, and holding a word it wanted back a frame
    changed what it wrote next — AQAA 85.8 -> 51 %, ninth session.)"""
    if text_layout == "ta4":
        raise ValueError("the ta4 layout's next token depends on the reply so far: use ReplyDecoder")
    if text_layout != "word":
        return int(logits.argmax())
    a0, a1 = layout.audio_offset, layout.audio_offset + layout.num_audio_codes
    if not prefers_text(logits, layout):
        return a0 + int(logits[a0:a1].argmax())
    return best_text_token(logits, layout)


class Ta4Slots:
    """Which tokens Step-Audio-2's "ta4" layout admits next in one free-running spoken reply (after
    ``<tts_start>``); the layout itself is :func:`a2llm.lalm.tokens.ta4_interleave`.

    Chunks of a text slot and then ``chunk`` audio slots:

    * text slot: a text token, ``<tts_pad>`` (the text is used up: every later text slot takes ``<tts_pad>``)
      or ``<tts_end>`` (not as the reply's first token);
    * audio slot: an audio code, ``<audio_pad>`` (the speech is used up) or ``<tts_end>`` (the last chunk may be
      short);
    * once the speech is used up, every slot takes a text token (the chunks of text alone that end a reply
      whose text outlasts its speech), ``<audio_pad>`` or ``<tts_end>``;
    * after ``<tts_end>``: ``<|EOT|>`` (the collator closes every spoken reply so; the public chat template
      would allow plain text there, which A²-LLM does not use).

    Pads are never text nor speech. This admits every :func:`ta4_interleave` layout but one: speech that ends
    without a pad while text remains (ceil(A/4) < T <= A, more than one text token per 0.16 s of speech), which
    it asks to end with ``<audio_pad>`` first.
    """

    def __init__(self, layout: TokenLayout, chunk: int = 4):
        self.L, self.chunk = layout, chunk
        self.phase = 0                  # 0: the chunk's text slot is next; 1..chunk: its audio slots
        self.text_done = self.audio_done = self.closed = False
        self.started = False

    def slot(self) -> str:
        """The kind of the next slot: "text", "audio", "text-only" (speech used up) or "closed"."""
        if self.closed:
            return "closed"
        if self.audio_done:
            return "text-only"
        return "text" if self.phase == 0 else "audio"

    def allowed(self, vocab: int, device="cpu") -> torch.Tensor:
        """[vocab] bool: the ids admitted next."""
        return _ta4_mask(self.L, vocab, str(device), self.slot(), self.text_done, self.started)

    def feed(self, token: int) -> None:
        """Advance past the chosen ``token``."""
        L, token = self.L, int(token)
        self.started = True
        if self.closed:
            return
        if token == L.tts_end:
            self.closed = True
        elif self.audio_done:
            pass
        elif self.phase == 0:
            self.text_done |= token == L.tts_pad
            self.phase = 1
        elif L.audio_pad is not None and token == L.audio_pad:
            self.audio_done = True
        else:
            self.phase = self.phase + 1 if self.phase < self.chunk else 0


@functools.lru_cache(maxsize=64)
def _ta4_mask(layout: TokenLayout, vocab: int, device: str, slot: str, text_done: bool, started: bool):
    text, audio = kind_masks(layout, vocab, device)
    m = torch.zeros(vocab, dtype=torch.bool, device=device)
    extra = []
    if slot == "closed":
        extra = [layout.eot]
    elif slot == "audio":
        m |= audio
        extra = [layout.audio_pad, layout.tts_end]
    else:
        if not text_done:
            m |= text
        extra = [layout.tts_pad] if slot == "text" else ([] if text_done else [layout.audio_pad])
        if started:
            extra.append(layout.tts_end)
    m[[t for t in extra if t is not None and t < vocab]] = True
    return m


class ReplyDecoder:
    """Chooses the tokens of one free-running reply: the text layout decides which kinds of token may come next,
    then a :class:`Picker` takes the best one or draws one among them (:class:`Sampling`).

    * "ta4" (Step-Audio-2): :class:`Ta4Slots` — text slot: text only; audio slot: audio codes only; pads and
      ``<tts_end>`` where the layout has them. A text reply (``speech=False``, ASR): text tokens and ``<|EOT|>``.
    * "word" (nano): speak or write (:func:`prefers_text`), then a token of that kind.
    * "chunked": any token.

    Greedy (:data:`GREEDY`) "chunked" / "word" choose exactly as :func:`next_token`.

    Args:
        seen: the ids already in the sequence (the prompt), for the repetition penalty.
        generator: the draws' source (see :class:`Picker`).
    """

    def __init__(self, layout: TokenLayout, text_layout: str = "chunked", sampling: Sampling = GREEDY,
                 generator: torch.Generator | None = None, seen: Sequence[int] = (), speech: bool = True,
                 chunk: int = 4):
        if text_layout not in TEXT_LAYOUTS:
            raise ValueError(f"text_layout={text_layout!r}, choose from {TEXT_LAYOUTS}")
        self.L, self.mode, self.speech = layout, text_layout, speech
        self.picker = Picker(sampling, generator, seen)
        self.slots = Ta4Slots(layout, chunk) if text_layout == "ta4" and speech else None

    def allowed(self, logits: torch.Tensor) -> torch.Tensor | None:
        """[V] bool: the ids admitted at this step (None: all)."""
        V, dev = logits.shape[-1], logits.device
        if self.slots is not None:
            return self.slots.allowed(V, dev)
        if self.mode == "ta4":                     # a text reply
            m = kind_masks(self.L, V, str(dev))[0].clone()
            m[self.L.eot] = True
            return m
        if self.mode == "word":
            audio = kind_masks(self.L, V, str(dev))[1]
            return ~audio if prefers_text(logits, self.L) else audio
        return None

    def choose(self, logits: torch.Tensor) -> int:
        """The next token from [V] logits (and the state advanced past it)."""
        token = self.picker.pick(logits, self.allowed(logits))
        self.picker.feed(token)
        if self.slots is not None:
            self.slots.feed(token)
        return token


class Generator:
    """Batched generation and reference-timeline motion for one A²-LLM.

    ``sampling``: how tokens are drawn by default (None: :func:`default_sampling` of the model's text layout —
    greedy for nano, the release's settings for Step-Audio-2); :meth:`answer` can override it per call.
    """

    def __init__(self, model, text_tokenizer, layout: TokenLayout | None = None, sampling: Sampling | None = None,
                 motion_decode: str = "expected"):
        self.motion_decode = check_motion_decode(motion_decode)          # as EngineConfig.motion_decode
        self.model, self.tok = model.eval(), text_tokenizer
        self.layout = layout or layout_for(text_tokenizer)
        self.text_layout = text_layout_of(model, self.layout)
        self.sampling = sampling if sampling is not None else default_sampling(self.text_layout)
        self.collate = FlameQACollator(text_tokenizer, self.layout, CollatorConfig(text_layout=self.text_layout))
        self.word_start = word_start_mask(text_tokenizer)
        if model.motion_tokenizer is None:
            raise ValueError("this model has no motion tokenizer (rvq part): it cannot produce motion")

    # ------------------------------------------------------------------------------------------ motion
    def _motion_from_hidden(self, hidden: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
        """hidden [B, T, d] at audio-token steps -> B motions [T_b, 58] through connector + RVQ decoder."""
        gen = self.model.connector.generate(hidden, lengths)
        G = self.model.connector.cfg.group
        out = []
        for b, T in enumerate(lengths.tolist()):
            if T == 0:
                out.append(np.zeros((0, 58), np.float32))
                continue
            n = -(-T // G)
            out.append(decode_prediction(self.model.motion_tokenizer, gen.tokens[b, :n], gen.logits[b, :n],
                                         self.motion_decode)[:T])
        return out

    @torch.no_grad()
    def motion_for_reference(self, samples: Sequence[FlameQASample], task: str = "aqaa") -> list[np.ndarray]:
        """Motion for each sample's *reference* answer (fed as if generated): [T, 58] each, T = its frames."""
        batch = self.collate(list(samples), task)
        out = self.model.backbone(batch.input_ids, batch.attention_mask, batch.input_audio,
                                  batch.input_audio_lengths, batch.audio_patch_mask)
        pos = batch.audio_token_positions.clamp(min=0)
        hidden = torch.gather(out.hidden, 1, pos[..., None].expand(-1, -1, out.hidden.shape[-1]))
        return self._motion_from_hidden(hidden, batch.motion_lengths)

    # ------------------------------------------------------------------------------------------ decoding
    def _prompts(self, samples: Sequence[FlameQASample], task: str):
        """The prompt batch (through <tts_start> for speech tasks); the samples' answers are not read."""
        batch = self.collate(list(samples), task, with_answer=False)
        return batch.input_ids, batch.attention_mask, batch, batch.audio_patch_mask

    @torch.no_grad()
    def answer(self, samples: Sequence[FlameQASample], task: str = "aqaa", max_new_tokens: int = 400,
               with_motion: bool = True, force_text: Sequence[Sequence[int]] | None = None,
               sampling: Sampling | None = None) -> list[Answer]:
        """Answers for a batch of samples (their reference answers are not used).

        Each row's tokens come from a :class:`ReplyDecoder` (the text layout's slots, then ``sampling``, default
        ``self.sampling``); sampled rows draw in turn from one ``torch.Generator`` seeded with ``sampling.seed``,
        so a call is reproducible (a row's draws depend on the batch it is in).

        ``force_text`` (text-to-speech with a given text): each row's answer text token ids, placed as the
        model's training layout places them (:class:`TextSchedule`) while the model generates every audio
        token; audio steps only admit audio codes, and ``<tts_end>`` once the text is used up.
        """
        L = self.layout
        sampling = sampling if sampling is not None else self.sampling
        ids, mask, batch, patch = self._prompts(samples, task)
        logits, _, state = self.model.backbone.prefill(ids, mask, batch.input_audio, batch.input_audio_lengths, patch)
        B = len(samples)
        prompts = [ids[b][mask[b].bool()].tolist() for b in range(B)]
        rng = None if sampling.greedy else torch.Generator(device=logits.device).manual_seed(sampling.seed)
        if force_text is not None:
            sched = []
            for b, t in enumerate(force_text):
                # A picker only when not plain greedy: TextSchedule's own argmax is the greedy choice.
                extra = {} if sampling == GREEDY else {"picker": Picker(sampling, rng, prompts[b])}
                sched.append(TextSchedule(list(t), L, text_layout=self.text_layout,
                                          pacing=WordPacing(self.word_start, L), **extra))
        else:
            sched = [ReplyDecoder(L, self.text_layout, sampling, rng, prompts[b], speech=task != "asr")
                     for b in range(B)]
        generated: list[list[int]] = [[] for _ in range(B)]
        audio_hidden: list[list[torch.Tensor]] = [[] for _ in range(B)]
        done = torch.zeros(B, dtype=torch.bool)
        for _ in range(max_new_tokens):
            nxt = torch.tensor([L.pad if done[b] else sched[b].choose(logits[b]) for b in range(B)])
            for b in range(B):
                if not done[b]:
                    generated[b].append(int(nxt[b]))
            done |= nxt == L.eot
            if bool(done.all()):
                break
            logits, hidden, state = self.model.backbone.step(nxt[:, None], state)
            is_audio = L.is_audio(nxt) & ~done
            for b in is_audio.nonzero().flatten().tolist():
                audio_hidden[b].append(hidden[b])
        answers = []
        lengths = torch.tensor([len(h) for h in audio_hidden])
        motions = [np.zeros((0, 58), np.float32)] * B
        if with_motion and int(lengths.max()) > 0:
            H = torch.zeros(B, int(lengths.max()), hidden.shape[-1])
            for b, h in enumerate(audio_hidden):
                if h:
                    H[b, :len(h)] = torch.stack(h)
            motions = self._motion_from_hidden(H, lengths)
        for b in range(B):
            toks = generated[b]
            codes = np.array([t - L.audio_offset for t in toks if L.is_audio(t)], np.int64)
            text = self.tok.decode(L.text_ids(toks), skip_special_tokens=True).strip()
            answers.append(Answer(text, codes, motions[b], toks))
        return answers


class TextSchedule:
    """Where the known text of a spoken answer goes (one row of forced-text decoding), as the model was trained:

    * "chunked": one text token, then ``audio_chunk`` audio tokens, ...;
    * "word": the model decides — whenever it would rather write text than speech (its probability of some
      non-audio token beats that of some audio code), the next text token is placed;
    * "ta4" (Step-Audio-2): as "chunked", but once the text is used up each text slot takes ``<tts_pad>``.

    Audio alone once the text is used up, then ``<tts_end>`` when the model prefers it to every audio code
    ("ta4": at a text slot, when it prefers ``<tts_end>`` to ``<tts_pad>``). Audio codes are the best one, or
    drawn by ``picker`` (:class:`Picker`) when given.
    """

    def __init__(self, text: list[int], layout: TokenLayout, audio_chunk: int = 4, text_layout: str = "chunked",
                 pacing: WordPacing | None = None, picker: Picker | None = None):
        self.text, self.L, self.chunk, self.mode = text, layout, audio_chunk, text_layout
        self.pacing = pacing         # word layout: a new word only after the current one's first frame
        self.picker = picker
        self.i = 0                   # text tokens placed
        self.k = audio_chunk         # audio tokens since the last text token (start: a text slot is due)
        self.closing = False

    def _text_due(self, logits: torch.Tensor) -> bool:
        if self.i >= len(self.text):
            return False
        if self.mode == "word":
            if self.i == 0:
                return True
            if not prefers_text(logits, self.L):
                return False
            nxt = self.text[self.i]
            if self.pacing is not None and self.pacing.starts_word(nxt) and not self.pacing.may_start_word():
                return best_text_token(logits, self.L) == nxt   # early only if the model wants just this word
            return True
        return self.k >= self.chunk

    def choose(self, logits: torch.Tensor) -> int:
        token = self._choose(logits)
        if self.pacing is not None:
            self.pacing.feed(token)
        if self.picker is not None:
            self.picker.feed(token)
        return token

    def _choose(self, logits: torch.Tensor) -> int:
        L = self.L
        if self.closing:
            return L.eot
        audio = logits[L.audio_offset:L.audio_offset + L.num_audio_codes]
        if self._text_due(logits):
            self.i, self.k = self.i + 1, 0
            return self.text[self.i - 1]
        if self.mode == "ta4" and self.k >= self.chunk:          # a text slot after the text: pad or close
            if logits[L.tts_end] > logits[L.tts_pad]:
                self.closing = True
                return L.tts_end
            self.k = 0
            return L.tts_pad
        if self.i >= len(self.text) and logits[L.tts_end] > audio.max():
            self.closing = True
            return L.tts_end
        self.k += 1
        if self.picker is None:
            return L.audio_offset + int(audio.argmax())
        return self.picker.pick(logits, kind_masks(L, logits.shape[-1], str(logits.device))[1])


# Every spoken question nano trained on has 0.1-0.3 s of silence before and after the speech (FLAME-QA-nano's
# generator); a clip cut right at the speech (a VAD segment, a bare espeak-ng clip) is answered badly without
# that margin (eighth session: "Did you enjoy the party?" in a held-out voice -> "Dified doorn."; with 0.2 s on
# each side -> the right answer). So user clips get the margin before they reach the model.
QUESTION_MARGIN_S = 0.2


def pad_question(audio: np.ndarray, sample_rate: int, margin_s: float = QUESTION_MARGIN_S) -> np.ndarray:
    """``audio`` [N] with ``margin_s`` seconds of silence added before and after -> [N + 2 margin] float32."""
    pad = np.zeros(int(round(margin_s * sample_rate)), np.float32)
    return np.concatenate([pad, np.asarray(audio, np.float32), pad])


def question(text: str | None = None, audio: np.ndarray | None = None, sample_rate: int = 16000,
             context: Sequence[tuple[str, str]] = (),
             margin_s: float = QUESTION_MARGIN_S) -> tuple[FlameQASample, str]:
    """A user turn as a sample the generator takes, and its task: spoken (``audio``, 16 kHz; ``margin_s`` of
    silence added around it, :func:`pad_question`) -> "aqaa", typed (``text``) -> "tqa". ``context``: earlier
    (role, text) turns, role "human" or "assistant"."""
    if (text is None) == (audio is None):
        raise ValueError("give either the typed question (text) or the spoken one (audio), not both")
    empty = np.zeros(0, np.float32)
    q_audio = empty if audio is None else pad_question(audio, sample_rate, margin_s)
    s = FlameQASample(id="turn", question_text=text or "", question_audio=q_audio, response_text="",
                      response_audio=empty, sample_rate=sample_rate, motion=np.zeros((0, 58), np.float32),
                      emotion="neutral", context=[Turn(r, t) for r, t in context])
    return s, ("aqaa" if audio is not None else "tqa")
