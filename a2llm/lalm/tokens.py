"""Token layout shared by the full-size Step-Audio-2 path and A²-LLM-nano.

Both scales use the same special-token *roles* (DESIGN.md; ids of the real model in
shared/STEP_AUDIO2_FACTS.md):

    <|BOT|>role\\n ... <|EOT|>       one dialogue turn (roles: system, human, assistant)
    <audio_start> <audio_patch>×n <audio_end>
                                      input audio; each patch is replaced by one adaptor frame (12.5 Hz)
    <tts_start> text/audio interleaved <tts_end>
                                      assistant speech: text tokens and 25 Hz audio tokens in chunks
    <tts_pad>                         filler of a text slot once the text is used up; <|endoftext|> doubles as
                                      sequence padding
    <audio_6561>                      Step-Audio-2's filler of an audio slot once the speech is used up
                                      (``TokenLayout.audio_pad``): never speech, never text

Audio code k is token id ``audio_offset + k``. For Step-Audio-2 the offset is 151696 (k < 6561); for nano
the audio codes are appended after the text tokenizer's vocabulary.

Step-Audio-2's "ta4" layout of a spoken reply (:func:`ta4_interleave`, docs/STEP_AUDIO2.md): chunks of one text
token then four audio tokens, as the public vLLM / sglang Step-Audio-2 tokenizers rebuild a spoken turn.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SPECIAL_TOKENS = ("<|endoftext|>", "<|BOT|>", "<|EOT|>", "<audio_start>", "<audio_end>", "<audio_patch>",
                  "<tts_start>", "<tts_end>", "<tts_pad>")
ROLES = ("system", "human", "assistant")


@dataclass(frozen=True)
class TokenLayout:
    """Ids of the special tokens and the audio-code range of one vocabulary.

    ``audio_pad``: the id that fills audio slots once a reply's speech is used up (Step-Audio-2's
    ``<audio_6561>``, right after the 6,561 codes); None where the vocabulary has none (nano). It is neither an
    audio code (:meth:`is_audio` is False: never sent to the detokenizer, never given motion) nor text.
    """

    endoftext: int
    bot: int
    eot: int
    audio_start: int
    audio_end: int
    audio_patch: int
    tts_start: int
    tts_end: int
    tts_pad: int
    audio_offset: int
    num_audio_codes: int
    vocab_size: int
    audio_pad: int | None = None

    @property
    def pad(self) -> int:
        return self.endoftext

    @property
    def text_end(self) -> int:
        """Ids below this one are text, except <|endoftext|>, <|BOT|>, <|EOT|> (:meth:`is_text`): the audio /
        speech special tokens form one block right before the audio codes (Step-Audio-2: 151688..151695, its
        text ids are < 151688; nano: the specials follow the text pieces)."""
        return min(self.audio_start, self.audio_end, self.audio_patch, self.tts_start, self.tts_end, self.tts_pad)

    def is_text(self, token_id: int) -> bool:
        """A text token: below :attr:`text_end` and not <|endoftext|> / <|BOT|> / <|EOT|>."""
        return 0 <= int(token_id) < self.text_end and int(token_id) not in (self.endoftext, self.bot, self.eot)

    def audio_id(self, code):
        """Audio code(s) -> token id(s)."""
        return code + self.audio_offset

    def is_audio(self, token_id) -> bool:
        return (token_id >= self.audio_offset) & (token_id < self.audio_offset + self.num_audio_codes)

    def text_ids(self, ids) -> list[int]:
        """The text tokens among generated ids (:meth:`is_text`): no audio codes or pads, no special tokens."""
        return [int(t) for t in ids if self.is_text(t)]

    @classmethod
    def from_tokenizer(cls, tokenizer, num_audio_codes: int, audio_offset: int | None = None) -> "TokenLayout":
        """Read the special ids from a Hugging Face tokenizer that contains :data:`SPECIAL_TOKENS`.

        ``audio_offset`` defaults to the id of ``<audio_0>`` if the tokenizer has it, else to the end
        of its vocabulary (nano appends the codes). ``audio_pad`` is the id of ``<audio_{num_audio_codes}>`` if
        the tokenizer has that token right after the last code (Step-Audio-2's ``<audio_6561>``), else None.
        """
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        if audio_offset is None:
            first = tokenizer.convert_tokens_to_ids("<audio_0>")
            audio_offset = first if first not in (None, tokenizer.unk_token_id) else len(tokenizer)
        pad = tokenizer.convert_tokens_to_ids(f"<audio_{num_audio_codes}>")
        audio_pad = pad if pad == audio_offset + num_audio_codes else None
        vocab = max(len(tokenizer), audio_offset + num_audio_codes)
        return cls(endoftext=ids["<|endoftext|>"], bot=ids["<|BOT|>"], eot=ids["<|EOT|>"],
                   audio_start=ids["<audio_start>"], audio_end=ids["<audio_end>"],
                   audio_patch=ids["<audio_patch>"], tts_start=ids["<tts_start>"], tts_end=ids["<tts_end>"],
                   tts_pad=ids["<tts_pad>"], audio_offset=audio_offset, num_audio_codes=num_audio_codes,
                   vocab_size=vocab, audio_pad=audio_pad)


#: Step-Audio-2-mini's ids (STEP_AUDIO2_FACTS.md: seen in public code, except BOT and tts_pad inferred; the
#: audio pad <audio_6561> = 151696 + 6561 is named by vLLM's step_audio_2_tts_ta4 parser).
STEP_AUDIO2_LAYOUT = TokenLayout(endoftext=151643, bot=151666, eot=151665, audio_start=151688, audio_end=151689,
                                 audio_patch=151690, tts_start=151693, tts_end=151694, tts_pad=151695,
                                 audio_offset=151696, num_audio_codes=6561, vocab_size=158720, audio_pad=158257)

_IDS = ("endoftext", "bot", "eot", "audio_start", "audio_end", "audio_patch", "tts_start", "tts_end", "tts_pad",
        "audio_offset")


def is_step_audio2(layout: TokenLayout) -> bool:
    """Whether a layout is Step-Audio-2's (the released model or the tiny test fixture): its special ids and
    audio offset are :data:`STEP_AUDIO2_LAYOUT`'s. Nano's vocabulary is its own and never matches."""
    return all(getattr(layout, f) == getattr(STEP_AUDIO2_LAYOUT, f) for f in _IDS)


def ta4_interleave(text: Sequence[int], audio: Sequence[int], layout: TokenLayout, chunk: int = 4) -> list[int]:
    """The body of a spoken reply between ``<tts_start>`` and ``<tts_end>`` in Step-Audio-2's "ta4" layout.

    The rule of the public Step-Audio-2 tokenizers (``build_tts_interleave_data`` in stepfun-ai/vllm and
    sglang): N = max(ceil(A / chunk), T) chunks for T text and A audio token ids; the text is extended to N ids
    with ``<tts_pad>``; the audio to max(A, N) ids with ``<audio_pad>`` (N - A of them, only when N > A); chunk i
    is text[i] followed by audio[chunk*i : chunk*(i+1)]. So in the usual reply (T <= ceil(A / chunk): speech
    outlasts the text) ``<tts_pad>`` fills the text slots after the text and the last chunk carries the
    remaining 1..chunk audio tokens, with no ``<audio_pad>``; when the text outlasts the speech the later chunks
    carry text alone (after N - A audio pads if T > A).

    Args:
        text: text token ids; audio: audio token ids (``layout.audio_id(code)``).
    Returns:
        the interleaved ids (no ``<tts_start>`` / ``<tts_end>``).
    """
    text, audio = [int(t) for t in text], [int(a) for a in audio]
    n = max(math.ceil(len(audio) / chunk), len(text))
    if n > len(audio) and layout.audio_pad is None:
        raise ValueError(f"ta4: {len(text)} text tokens outlast {len(audio)} audio tokens, and this vocabulary has "
                         f"no audio pad token (TokenLayout.audio_pad) to fill the audio slots")
    text = text + [layout.tts_pad] * (n - len(text))
    audio = audio + [layout.audio_pad] * (n - len(audio))
    out: list[int] = []
    for i in range(n):
        out += text[i:i + 1] + audio[i * chunk:(i + 1) * chunk]
    return out


def num_audio_patches(num_samples: int) -> int:
    """Adaptor frames (12.5 Hz) of one 16 kHz clip of at most 25 s (longer clips are cut into 25 s chunks,
    each with its own ``<audio_start>…<audio_end>``; see :func:`audio_patch_counts`).

    The counting rule of the public Step-Audio2 code: mel frames T = (num_samples + 479) // 160 (the audio
    is padded by 479 samples before the STFT), the encoder keeps (T - 1) // 2 // 2 frames (stride-2 conv,
    then 2x average pool) and the adaptor's stride-2 conv gives (enc - 1) // 2 + 1.
    """
    from a2llm.lalm.encoder import adapter_frames, encoder_frames
    from a2llm.lalm.frontend import num_mel_frames

    return max(0, int(adapter_frames(encoder_frames(num_mel_frames(num_samples)))))


def audio_patch_counts(num_samples: int) -> list[int]:
    """Patch count of each 25 s chunk of a clip, in order."""
    from a2llm.lalm.frontend import chunk_spans

    return [num_audio_patches(size) for _, size in chunk_spans(num_samples)]
