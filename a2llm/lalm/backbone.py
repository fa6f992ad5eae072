"""The Step-Audio-2 backbone, natively (no remote code): front end, audio encoder, adaptor, Qwen2 decoder.

One class at both scales: :meth:`BackboneConfig.full` is Step-Audio-2-mini, :meth:`BackboneConfig.nano` the
tiny model this project trains. Submodules sit where the released checkpoint puts them, so
``StepAudio2Backbone.state_dict()`` keys are the released tensor names::

    model.embed_tokens.weight, model.layers.{i}..., model.norm.weight   (transformers' Qwen2Model)
    lm_head.weight                                                      (nn.Linear, untied)
    encoder.conv1.weight, encoder.blocks.{i}.attn.query.weight, ...     (encoder.AudioEncoder)
    adapter.conv.weight, adapter.linear1.weight, ...                    (encoder.AudioAdapter)

``model`` and ``lm_head`` are the submodules of a transformers ``Qwen2ForCausalLM`` (reachable as ``.llm``);
the wrapper itself is not registered as a child, so its parameters appear once, under the released names.

The KV cache lives outside the module: :meth:`prefill` returns a :class:`DecodeState` (transformers
``DynamicCache`` + attention mask + next rope positions) that :meth:`step` takes and returns, one token at a
time, handing back each step's logits and last-layer hidden state (what the Motion Connector reads).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2RotaryEmbedding

from a2llm.lalm.encoder import AudioAdapter, AudioEncoder, EncoderConfig
from a2llm.lalm.frontend import FrontendConfig, LogMelFrontend, chunk_spans
from a2llm.lalm.lexicon import LexiconEmbedding

# transformers 5 renamed Qwen2Model.forward's ``past_key_values`` to ``cache`` (old name deprecated).
_CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen2Model.forward).parameters else "past_key_values"


@dataclass(frozen=True)
class BackboneConfig:
    """Sizes of the Qwen2 decoder (``text_config``) and of the audio encoder (``audio_encoder_config``)."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float = 1e6
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    lexicon_phones: int = 0     # > 0: text embeddings carry up to this many phones per token (lexicon.py; nano)
    ctc_layer: int = 0          # > 0: a CTC head reads this decoder layer at the input-audio positions (nano)

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads {self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads {self.num_key_value_heads}")
        if self.encoder.llm_dim != self.hidden_size:
            raise ValueError(f"encoder.llm_dim {self.encoder.llm_dim} must equal hidden_size {self.hidden_size}")
        if not 0 <= self.ctc_layer <= self.num_hidden_layers:
            raise ValueError(f"ctc_layer {self.ctc_layer} must be within [0, {self.num_hidden_layers}] (0 = none)")

    @classmethod
    def full(cls) -> "BackboneConfig":
        """Step-Audio-2-mini (STEP_AUDIO2_FACTS.md)."""
        return cls(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                   num_key_value_heads=4, vocab_size=158720, max_position_embeddings=16384, rope_theta=1e6,
                   rms_norm_eps=1e-6, encoder=EncoderConfig())

    @classmethod
    def nano(cls, vocab_size: int) -> "BackboneConfig":
        """A²-LLM-nano: the same architecture, small enough to train and decode on CPU."""
        return cls(hidden_size=128, intermediate_size=352, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=4096,
                   encoder=EncoderConfig(n_audio_state=64, n_audio_head=2, n_audio_layer=2, llm_dim=128,
                                         adapter_hidden=256))

    def qwen2_config(self, attn_implementation: str = "sdpa") -> Qwen2Config:
        """The transformers config of the decoder."""
        cfg = Qwen2Config(hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
                          num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                          num_key_value_heads=self.num_key_value_heads, vocab_size=self.vocab_size,
                          max_position_embeddings=self.max_position_embeddings, rms_norm_eps=self.rms_norm_eps,
                          rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
                          tie_word_embeddings=self.tie_word_embeddings, hidden_act="silu")
        cfg._attn_implementation = attn_implementation
        return cfg


@dataclass
class BackboneOutput:
    """logits [B, L, V]; hidden [B, L, d] last layer after the final norm; past_key_values (when cached);
    layer_hidden [B, L, d] the output of the decoder layer asked for (``capture_layer``), else None."""

    logits: torch.Tensor
    hidden: torch.Tensor
    past_key_values: DynamicCache | None = None
    layer_hidden: torch.Tensor | None = None


@dataclass
class DecodeState:
    """Everything step-by-step decoding carries between calls, for B rows.

    Attributes:
        cache: the transformers KV cache (S positions so far).
        attention_mask: [B, S] 1 for real tokens (prompt padding stays 0).
        next_position: [B] rope position of each row's next token (its count of real tokens).
    """

    cache: DynamicCache
    attention_mask: torch.Tensor
    next_position: torch.Tensor


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, S] mask -> [B, S] rope positions counting only real tokens (left or right padding)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class StepAudio2Backbone(nn.Module):
    """Step-Audio-2: audio -> log-mel -> encoder -> adaptor frames in the <audio_patch> slots -> Qwen2.

    Args:
        config: sizes.
        attn_implementation: transformers attention backend of the decoder ("sdpa" or "eager").
    """

    def __init__(self, config: BackboneConfig, attn_implementation: str = "sdpa"):
        super().__init__()
        self.config = config
        self.frontend = LogMelFrontend(FrontendConfig(n_mels=config.encoder.n_mels))
        self.encoder = AudioEncoder(config.encoder)
        self.adapter = AudioAdapter(config.encoder)
        llm = Qwen2ForCausalLM(config.qwen2_config(attn_implementation))
        if config.lexicon_phones:
            plain = llm.model.embed_tokens
            llm.model.embed_tokens = LexiconEmbedding(config.vocab_size, config.hidden_size, config.lexicon_phones)
            llm.model.embed_tokens.weight.data.copy_(plain.weight.data)   # keep Qwen2's initialisation
        self.model: Qwen2Model = llm.model
        self.lm_head: nn.Linear = llm.lm_head
        object.__setattr__(self, "_llm", llm)   # shares model/lm_head; kept out of the module tree
        if config.ctc_layer:
            # Training-only: scores each input-audio position over the vocabulary + a CTC blank (the last class),
            # so that the decoder forms the words of what it hears where it hears them (A2LLM.forward).
            self.ctc_head = nn.Sequential(nn.LayerNorm(config.hidden_size),
                                          nn.Linear(config.hidden_size, config.vocab_size + 1))

    @property
    def llm(self) -> Qwen2ForCausalLM:
        """The transformers causal LM whose ``model`` and ``lm_head`` are this backbone's."""
        return self._llm

    def rebuild_buffers(self, device: torch.device | str) -> None:
        """Recompute the rope frequencies (a non-persistent buffer) on ``device``.

        Needed after building on the meta device and assigning loaded weights: the buffer is not in the
        checkpoint.
        """
        with torch.device(device):
            self.model.rotary_emb = Qwen2RotaryEmbedding(config=self.model.config)

    # ----------------------------------------------------------------------------------------- audio
    def encode_audio(self, input_audio: torch.Tensor, input_audio_lengths: torch.Tensor) -> list[torch.Tensor]:
        """Adaptor frames of each row's audio, clips in order and each clip cut into 25 s chunks.

        Args:
            input_audio: [B, N] one clip per row, or [B, K, N] up to K clips per row, 16 kHz.
            input_audio_lengths: [B] or [B, K] samples per clip (0 = no clip).

        Returns:
            B tensors [n_b, hidden_size]: row b's frames, in the order its <audio_patch> slots take them.
        """
        if input_audio.dim() == 2:
            input_audio, input_audio_lengths = input_audio[:, None], torch.as_tensor(input_audio_lengths)[:, None]
        lengths = torch.as_tensor(input_audio_lengths).long()
        if input_audio.dim() != 3 or lengths.shape != input_audio.shape[:2]:
            raise ValueError(f"input_audio must be [B, N] or [B, K, N] with lengths [B] or [B, K]; got audio "
                             f"{tuple(input_audio.shape)} and lengths {tuple(lengths.shape)}")
        B, K, N = input_audio.shape
        pieces, owner = [], []
        for b in range(B):
            for k in range(K):
                n = int(lengths[b, k])
                if not 0 <= n <= N:
                    raise ValueError(f"input_audio_lengths[{b}, {k}] = {n} is outside [0, {N}]")
                for start, size in chunk_spans(n, self.frontend.config):
                    pieces.append(input_audio[b, k, start:start + size])
                    owner.append(b)
        frames: list[list[torch.Tensor]] = [[] for _ in range(B)]
        if pieces:
            sizes = torch.tensor([len(p) for p in pieces], device=input_audio.device)
            batch = nn.utils.rnn.pad_sequence(pieces, batch_first=True)
            mel, mel_lengths = self.frontend(batch, sizes)
            enc, enc_lengths = self.encoder(mel, mel_lengths)
            out, out_lengths = self.adapter(enc, enc_lengths)
            for i, b in enumerate(owner):
                frames[b].append(out[i, :int(out_lengths[i])])
        width = self.config.hidden_size
        return [torch.cat(f) if f else input_audio.new_zeros(0, width) for f in frames]

    def embed(self, input_ids: torch.Tensor, input_audio: torch.Tensor | None = None,
              input_audio_lengths: torch.Tensor | None = None,
              audio_patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with each row's adaptor frames in its <audio_patch> positions, in order.

        Args:
            input_ids: [B, L] token ids.
            input_audio: [B, N] or [B, K, N] 16 kHz audio, or None for text-only input.
            input_audio_lengths: [B] or [B, K] samples per clip.
            audio_patch_mask: [B, L] True at <audio_patch> placeholders.

        Returns:
            inputs_embeds: [B, L, hidden_size].

        Raises:
            ValueError: a row's placeholder count differs from the frames its audio gives.
        """
        embeds = self.model.embed_tokens(input_ids)
        has_slots = audio_patch_mask is not None and bool(audio_patch_mask.any())
        if input_audio is None:
            if has_slots:
                raise ValueError("audio_patch_mask marks <audio_patch> positions but no input_audio was given")
            return embeds
        if audio_patch_mask is None or audio_patch_mask.shape != input_ids.shape:
            got = None if audio_patch_mask is None else tuple(audio_patch_mask.shape)
            raise ValueError(f"input_audio needs audio_patch_mask of shape {tuple(input_ids.shape)} "
                             f"(True at <audio_patch>), got {got}")
        if input_audio_lengths is None:
            raise ValueError("input_audio needs input_audio_lengths (samples per clip)")
        frames = self.encode_audio(input_audio, input_audio_lengths)
        slots = audio_patch_mask.sum(-1).tolist()
        bad = [(b, s, len(f)) for b, (s, f) in enumerate(zip(slots, frames)) if s != len(f)]
        if bad:
            raise ValueError("<audio_patch> count differs from the audio's adaptor frames (row, slots, frames): "
                             f"{bad}; build prompts with a2llm.lalm.tokens.num_audio_patches per 25 s chunk")
        flat = torch.cat(frames).to(embeds.dtype)
        # masked_scatter fills row by row, positions in order: the frame order of encode_audio.
        return embeds.masked_scatter(audio_patch_mask[..., None].to(embeds.device), flat)

    # ----------------------------------------------------------------------------------------- decoder
    def decode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
               position_ids: torch.Tensor | None = None, past_key_values: DynamicCache | None = None,
               use_cache: bool = False, capture_layer: int = 0) -> BackboneOutput:
        """Run the Qwen2 decoder and LM head on embeddings [B, L, d].

        ``attention_mask`` covers the cached positions and the new ones ([B, S_past + L]); rope positions
        are taken from it (padding does not count) unless ``position_ids`` [B, L] are given. ``capture_layer``
        k > 0 also returns decoder layer k's output (``layer_hidden``).
        """
        L = inputs_embeds.shape[1]
        if position_ids is None and attention_mask is not None:
            position_ids = positions_from_mask(attention_mask)[:, -L:]
        captured = []
        hook = None
        if capture_layer:
            hook = self.model.layers[capture_layer - 1].register_forward_hook(
                lambda _m, _i, o: captured.append(o[0] if isinstance(o, tuple) else o))
        try:
            out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=use_cache, **{_CACHE_KWARG: past_key_values})
        finally:
            if hook is not None:
                hook.remove()
        hidden = out.last_hidden_state
        cache = getattr(out, _CACHE_KWARG, None) if use_cache else None
        return BackboneOutput(logits=self.lm_head(hidden), hidden=hidden, past_key_values=cache,
                              layer_hidden=captured[0] if captured else None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_audio: torch.Tensor | None = None, input_audio_lengths: torch.Tensor | None = None,
                audio_patch_mask: torch.Tensor | None = None, past_key_values: DynamicCache | None = None,
                use_cache: bool = False, capture_layer: int = 0) -> BackboneOutput:
        """Full forward pass (training, scoring).

        Args:
            input_ids: [B, L].
            attention_mask: [B, L] (or [B, S_past + L] with ``past_key_values``), 1 for real tokens.
            input_audio, input_audio_lengths, audio_patch_mask: see :meth:`embed`.
            past_key_values: a cache to extend, or None.
            use_cache: return the (new or extended) cache.
            capture_layer: k > 0 also returns decoder layer k's output [B, L, d] (``layer_hidden``).

        Returns:
            BackboneOutput with logits [B, L, V] and hidden [B, L, d].
        """
        embeds = self.embed(input_ids, input_audio, input_audio_lengths, audio_patch_mask)
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache(config=self.model.config)
        return self.decode(embeds, attention_mask, past_key_values=past_key_values, use_cache=use_cache,
                           capture_layer=capture_layer)

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_audio: torch.Tensor | None = None, input_audio_lengths: torch.Tensor | None = None,
                audio_patch_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, DecodeState]:
        """Process a (left- or right-padded) prompt and open a decode state.

        Returns:
            logits: [B, V] at each row's last real token.
            hidden: [B, L, d] hidden states of the whole prompt.
            state: the :class:`DecodeState` to pass to :meth:`step`.
        """
        B, L = input_ids.shape
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(input_ids.device).long()
        if mask.shape != (B, L) or (mask.sum(-1) == 0).any():
            raise ValueError(f"attention_mask must be [B={B}, L={L}] with a real token in every row")
        out = self.forward(input_ids, mask, input_audio, input_audio_lengths, audio_patch_mask, use_cache=True)
        last = (mask * torch.arange(1, L + 1, device=mask.device)).argmax(-1)      # last real token per row
        logits = out.logits[torch.arange(B, device=mask.device), last]
        return logits, out.hidden, DecodeState(out.past_key_values, mask, mask.sum(-1))

    @torch.no_grad()
    def extend(self, state: DecodeState, input_ids: torch.Tensor, input_audio: torch.Tensor | None = None,
               input_audio_lengths: torch.Tensor | None = None, audio_patch_mask: torch.Tensor | None = None,
               inputs_embeds: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, DecodeState]:
        """Append several tokens (e.g. the next dialogue turn) to an open decode state, in one pass.

        Args:
            state: from :meth:`prefill`, :meth:`step` or an earlier ``extend``; updated in place.
            input_ids: [B, n] the new tokens (no padding); audio arguments as in :meth:`embed`.
            inputs_embeds: [B, n, d] precomputed embeddings (then the other inputs are not embedded again).

        Returns:
            logits [B, V] after the last new token, hidden [B, n, d] of the new tokens, and the state.
        """
        B, n = input_ids.shape
        if state.attention_mask.shape[0] != B:
            raise ValueError(f"the state holds {state.attention_mask.shape[0]} rows, got {B}")
        embeds = inputs_embeds if inputs_embeds is not None else \
            self.embed(input_ids, input_audio, input_audio_lengths, audio_patch_mask)
        mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(B, n)], dim=1)
        positions = state.next_position[:, None] + torch.arange(n, device=input_ids.device)[None]
        out = self.decode(embeds, mask, position_ids=positions, past_key_values=state.cache, use_cache=True)
        state.attention_mask, state.next_position = mask, state.next_position + n
        return out.logits[:, -1], out.hidden, state

    @torch.no_grad()
    def step(self, token_ids: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, torch.Tensor, DecodeState]:
        """Feed one token per row.

        Args:
            token_ids: [B, 1] the tokens just chosen.
            state: from :meth:`prefill` or the previous step; updated in place and returned.

        Returns:
            logits [B, V] for the next token, hidden [B, d] of this token, and the state.
        """
        B = state.attention_mask.shape[0]
        if token_ids.shape != (B, 1):
            raise ValueError(f"token_ids must be [B={B}, 1], got {tuple(token_ids.shape)}")
        mask = torch.cat([state.attention_mask, state.attention_mask.new_ones(B, 1)], dim=1)
        out = self.decode(self.model.embed_tokens(token_ids), mask, position_ids=state.next_position[:, None],
                          past_key_values=state.cache, use_cache=True)
        state.attention_mask, state.next_position = mask, state.next_position + 1
        return out.logits[:, -1], out.hidden[:, -1], state


def count_parameters(config: BackboneConfig) -> dict[str, int]:
    """Parameter counts of a config, built on the meta device (no memory): llm, encoder, adapter, total."""
    with torch.device("meta"):
        model = StepAudio2Backbone(config)
    count = lambda m: sum(p.numel() for p in m.parameters())           # noqa: E731
    llm = count(model.model) + (0 if config.tie_word_embeddings else count(model.lm_head))
    parts = {"llm": llm, "encoder": count(model.encoder), "adapter": count(model.adapter)}
    return {**parts, "total": sum(parts.values())}
