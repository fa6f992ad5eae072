"""Token layout shared by the full-size Step-Audio-2 path and A²-LLM-nano.

Both scales use the same special-token *roles* (DESIGN.md; ids of the real model in
shared/STEP_AUDIO2_FACTS.md):

    <|BOT|>role\\n ... <|EOT|>       one dialogue turn (roles: system, human, assistant)
    <audio_start> <audio_patch>×n <audio_end>
                                      input audio; each patch is replaced by one adaptor frame (12.5 Hz)
    <tts_start> text/audio interleaved <tts_end>
                                      assistant speech: text tokens and 25 Hz audio tokens in chunks
    <tts_pad>                         filler; <|endoftext|> doubles as padding

Audio code k is token id ``audio_offset + k``. For Step-Audio-2 the offset is 151696 (k < 6561); for nano
the audio codes are appended after the text tokenizer's vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

SPECIAL_TOKENS = ("<|endoftext|>", "<|BOT|>", "<|EOT|>", "<audio_start>", "<audio_end>", "<audio_patch>",
                  "<tts_start>", "<tts_end>", "<tts_pad>")
ROLES = ("system", "human", "assistant")


@dataclass(frozen=True)
class TokenLayout:
    """Ids of the special tokens and the audio-code range of one vocabulary."""

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

    @property
    def pad(self) -> int:
        return self.endoftext

    def audio_id(self, code):
        """Audio code(s) -> token id(s)."""
        return code + self.audio_offset

    def is_audio(self, token_id) -> bool:
        return (token_id >= self.audio_offset) & (token_id < self.audio_offset + self.num_audio_codes)

    def text_ids(self, ids) -> list[int]:
        """The text tokens among generated ids: no audio codes, no special tokens."""
        specials = {self.endoftext, self.bot, self.eot, self.audio_start, self.audio_end, self.audio_patch,
                    self.tts_start, self.tts_end, self.tts_pad}
        return [int(t) for t in ids if t < self.audio_offset and t not in specials]

    @classmethod
    def from_tokenizer(cls, tokenizer, num_audio_codes: int, audio_offset: int | None = None) -> "TokenLayout":
        """Read the special ids from a Hugging Face tokenizer that contains :data:`SPECIAL_TOKENS`.

        ``audio_offset`` defaults to the id of ``<audio_0>`` if the tokenizer has it, else to the end
        of its vocabulary (nano appends the codes).
        """
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
        missing = [t for t, i in ids.items() if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise ValueError(f"tokenizer lacks special tokens {missing}")
        if audio_offset is None:
            first = tokenizer.convert_tokens_to_ids("<audio_0>")
            audio_offset = first if first not in (None, tokenizer.unk_token_id) else len(tokenizer)
        vocab = max(len(tokenizer), audio_offset + num_audio_codes)
        return cls(endoftext=ids["<|endoftext|>"], bot=ids["<|BOT|>"], eot=ids["<|EOT|>"],
                   audio_start=ids["<audio_start>"], audio_end=ids["<audio_end>"],
                   audio_patch=ids["<audio_patch>"], tts_start=ids["<tts_start>"], tts_end=ids["<tts_end>"],
                   tts_pad=ids["<tts_pad>"], audio_offset=audio_offset, num_audio_codes=num_audio_codes,
                   vocab_size=vocab)


#: Step-Audio-2-mini's ids (STEP_AUDIO2_FACTS.md: seen in public code, except BOT and tts_pad inferred).
STEP_AUDIO2_LAYOUT = TokenLayout(endoftext=151643, bot=151666, eot=151665, audio_start=151688, audio_end=151689,
                                 audio_patch=151690, tts_start=151693, tts_end=151694, tts_pad=151695,
                                 audio_offset=151696, num_audio_codes=6561, vocab_size=158720)


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
