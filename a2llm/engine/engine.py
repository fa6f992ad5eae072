"""The streaming engine: one generator per dialogue turn, yielding text, speech and motion as they are made.

    engine = Engine.from_checkpoint("checkpoints/a2llm-nano")
    for event in engine.turn(audio=pcm_16k):          # or engine.turn(text="How was the concert?")
        ...                                            # TextDelta | AudioChunk | MotionChunk, then TurnMetrics
    engine.cancel()                                    # barge-in (from another thread): stops within one step
    engine.reset()                                     # forget the dialogue

Per turn: the new messages (system prompt on the first turn, then the user's turn, the assistant's reply opened
with ``<tts_start>``) are embedded — the audio encoder runs here — and appended to the KV cache that holds the
dialogue so far (one prefill pass). Then decoding, one token per step (the text layout's slots, then greedy or
sampled: :class:`~a2llm.generate.ReplyDecoder`, ``EngineConfig.sampling``): every audio token's last-layer
hidden state goes to the Motion Connector, which turns each segment of S motion tokens' worth of hidden states
(S * 5 audio tokens) into RVQ codes as soon as the segment is complete; the motion tokenizer's causal decoder
turns them into frames (a :class:`MotionChunk`). Audio tokens are pushed to the detokenizer's stream, which
returns speech in chunks. The reply's closing tokens are fed at the start of the next turn, so a turn ends as
soon as the model emits ``<|EOT|>``.

Clocks: ``t_ms`` and TTFT/TTFA are wall time since :meth:`Engine.turn` was called (the input has ended). Time
the caller spends between events is not charged to the engine's stages nor to its overhead ratio.
"""
from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache

from a2llm.data.collate import SYSTEM_PROMPTS
from a2llm.engine.context import exchange_ids, newest_that_fit, transcribe
from a2llm.engine.events import AudioChunk, Event, MotionChunk, TextDelta, TurnMetrics
from a2llm.generate import (QUESTION_MARGIN_S, ReplyDecoder, Sampling, check_motion_decode, default_sampling,
                             layout_for, pad_question, text_layout_of)
from a2llm.lalm.backbone import DecodeState
from a2llm.lalm.prompt import Audio, Message, PromptBuilder

STAGES = ("encoder", "prefill", "decode", "connector", "tokenizer_decode", "detokenizer")


@dataclass(frozen=True)
class EngineConfig:
    """Engine options.

    Attributes:
        max_new_tokens: decode steps per turn at most (text + audio tokens).
        segment_tokens: motion tokens per connector segment (S; None: the connector's own, the trained one).
            A segment needs S * 5 audio tokens (S * 0.2 s of speech) before it can run: smaller S, earlier
            first motion.
        device: "cuda" / "cpu" / None (CUDA when available).
        bf16: run the backbone and connector in bfloat16 on CUDA (None: yes on CUDA, no on CPU).
        system_prompt: the system turn opening every dialogue.
        force_audio_tokens: benchmarks: every step picks the best *audio* token and the reply is exactly this
            many audio tokens long (no text), whatever the model would have said.
        optimized: decode with :class:`~a2llm.engine.lean.LeanDecoder` (static KV cache, no transformers
            per-call overhead; LoRA merged into the weights) instead of the transformers forward.
        compile: torch.compile the optimized one-token step (CUDA graphs); None: on CUDA only.
        max_context: static cache capacity in tokens (optimized mode).
        context_replies: how a finished reply stays in the dialogue's cache: "text" (default) — the cache is cut
            back to the reply's start and the reply's text is appended as ``<|BOT|>assistant\\n{text}<|EOT|>``,
            the form earlier turns have in training (FLAME-QA context turns are text); "speech" — the reply's
            interleaved text and audio tokens stay as generated (closed with ``<tts_end>``/``<|EOT|>``).
        question_margin_s: seconds of silence added before and after a spoken turn before the model hears it
            (nano's training questions all have such a margin: :func:`a2llm.generate.pad_question`).
        context_budget: tokens the dialogue may hold when a turn starts, counting the new turn and its longest
            possible reply (``max_new_tokens``); when a turn would not fit, the cache is rebuilt from text with the
            system turn and as many of the newest exchanges as fit, the oldest dropped (a2llm/engine/context.py).
            None: ``max_context``. A turn that does not fit even alone is refused (ValueError), nothing changed.
        transcribe: a spoken turn stays in the dialogue as its transcript (the model's ASR subtask, run after the
            reply), the form earlier turns have in training; also shown to the visitor (``TurnMetrics.heard``).
            False: the audio stays in the cache (and such a turn is dropped if the cache is ever rebuilt).
        sampling: how each token is chosen among those the text layout admits (a ta4 text slot: text tokens
            only, an audio slot: audio codes only): temperature (0 = greedy), top-p, top-k, repetition penalty
            (over every id in the dialogue's cache) and the seed of the engine's ``torch.Generator`` (re-seeded
            by :meth:`Engine.reset`, so a dialogue replays exactly). None: greedy for nano, the release's
            temperature 0.7 / top-p 0.9 / repetition penalty 1.05 for Step-Audio-2
            (:func:`a2llm.generate.default_sampling`).
        motion_decode: how the connector's prediction becomes motion: "expected" (default: the latent its code
            distributions expect, :meth:`a2llm.motion.rvq.MotionRVQVAE.expected_latent`, smoother where it
            hesitates) or "codes" (its most likely code per level, decoded: the paper's way). The codes fed back
            into the connector are its most likely ones either way, as in training.
    """

    max_new_tokens: int = 800
    segment_tokens: int | None = None
    device: str | None = None
    bf16: bool | None = None
    system_prompt: str = SYSTEM_PROMPTS["aqaa"]
    force_audio_tokens: int | None = None
    optimized: bool = False
    compile: bool | None = None
    max_context: int = 4096
    context_replies: str = "text"
    question_margin_s: float = QUESTION_MARGIN_S
    context_budget: int | None = None
    transcribe: bool = True
    sampling: Sampling | None = None
    motion_decode: str = "expected"

    def __post_init__(self):
        check_motion_decode(self.motion_decode)
        if self.context_replies not in ("text", "speech"):
            raise ValueError("context_replies must be 'text' or 'speech'")
        if self.context_budget is not None and self.context_budget < 1:
            raise ValueError("context_budget must be a positive number of tokens (or None)")
        if self.force_audio_tokens is not None and self.force_audio_tokens < 1:
            raise ValueError("force_audio_tokens must be a positive number of audio tokens (or None)")


class _Clock:
    """Per-stage milliseconds of one turn, plus the time spent outside the engine (in the caller)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.stages = dict.fromkeys(STAGES, 0.0)
        self.outside = 0.0

    def now_ms(self) -> float:
        return 1000 * (time.perf_counter() - self.start)

    def add(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + 1000 * (t1 - t0)
        return t1


class Engine:
    """Streaming turns over one A²-LLM, its text tokenizer and a detokenizer (None: no speech is synthesised,
    audio tokens only — what the full-size GPU timing uses when the CosyVoice2 weights are absent)."""

    def __init__(self, model, tokenizer, detokenizer, config: EngineConfig = EngineConfig()):
        self.cfg = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        bf16 = config.bf16 if config.bf16 is not None else self.device.type == "cuda"
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        if model.motion_tokenizer is None:
            raise ValueError("the model has no motion tokenizer (rvq part): the engine cannot make motion")
        self.model = model.eval()
        self.backbone = model.backbone.to(self.device, self.dtype)
        self.backbone.rebuild_buffers(self.device)
        connector = model.connector.to(self.device, self.dtype)
        if config.segment_tokens is not None and config.segment_tokens != connector.cfg.segment_tokens:
            connector = copy.copy(connector)           # same weights, another segment length
            connector.cfg = replace(connector.cfg, segment_tokens=config.segment_tokens)
        self.connector = connector
        self.tok, self.layout = tokenizer, layout_for(tokenizer)
        self.text_layout = text_layout_of(model, self.layout)
        self.sampling = config.sampling if config.sampling is not None else default_sampling(self.text_layout)
        self.prompts = PromptBuilder(tokenizer, self.layout)
        self._system = self.prompts.build([Message("system", config.system_prompt)], reply=None).input_ids.tolist()
        self.detok = detokenizer
        self.motion_decoder = model.motion_tokenizer.streaming()
        self._cancel = threading.Event()
        self.lean = None
        if config.optimized:
            from a2llm.engine.lean import LeanDecoder

            if not all(layer.merged for layer in model.lora_layers()):
                model.merge_lora()
            self.lean = LeanDecoder(self.backbone, config.max_context)
            if config.compile if config.compile is not None else self.device.type == "cuda":
                self.lean.compile_step()
        self.reset()

    @classmethod
    def from_checkpoint(cls, folder: str | Path, config: EngineConfig = EngineConfig()) -> "Engine":
        from a2llm.lalm.detokenizer import load_detokenizer
        from a2llm.model import A2LLM, load_checkpoint_tokenizer

        return cls(A2LLM.from_pretrained(folder), load_checkpoint_tokenizer(folder), load_detokenizer(folder), config)

    # ------------------------------------------------------------------------------------------ dialogue
    def reset(self) -> None:
        """Forget the dialogue (KV cache and history)."""
        self.state: DecodeState | None = None       # base mode's KV cache (transformers)
        if self.lean is not None:
            self.lean.reset()                           # optimized mode's KV cache (static)
        self.started = False
        self.history: list[tuple[str, str | None]] = []   # (role, text); a spoken turn: its transcript (None: none)
        self.dropped_turns = 0                  # earlier exchanges dropped to fit the context budget
        self._pending: list[int] = []           # closing tokens of the last reply, fed with the next turn
        self.dialogue_ids: list[int] = []       # every token in the KV cache, in order (inspection, tests)
        self.dialogue_audio: list[np.ndarray] = []   # the user's clips as the model heard them (with the margin)
        # The draws of every turn of this dialogue; re-seeded here so that a fresh dialogue replays exactly.
        self._rng = torch.Generator(device=self.device).manual_seed(self.sampling.seed)

    def cancel(self) -> None:
        """Stop the running turn (barge-in); safe from any thread. The turn ends within one decode step."""
        self._cancel.set()

    @property
    def context_tokens(self) -> int:
        """Tokens in the KV cache (the dialogue so far)."""
        if self.lean is not None:
            return self.lean.length
        return 0 if self.state is None else int(self.state.attention_mask.shape[1])

    # ------------------------------------------------------------------------------------------ one turn
    @property
    def context_budget(self) -> int:
        return self.cfg.context_budget if self.cfg.context_budget is not None else self.cfg.max_context

    def _prompt(self, audio: np.ndarray | None, text: str | None, sample_rate: int):
        """The new tokens of a turn (closing tokens of the last reply, the system turn on the first turn, the user's
        turn, the reply's opening) -> (ids [1, n], audio-patch mask [1, n], audio clips). Rebuilds the cache from
        text first when the turn would not fit the context budget; raises before changing anything when the turn
        does not fit even alone."""
        if (audio is None) == (text is None):
            raise ValueError("a turn takes either audio (the user's speech) or text (a typed message)")
        if text is not None and not text.strip():
            raise ValueError("the typed message is empty")
        if audio is not None:
            audio = pad_question(audio, sample_rate, self.cfg.question_margin_s)
        turn = self.prompts.build([Message("human", Audio(audio, sample_rate) if audio is not None else text)],
                                  reply="speech")
        system = self._system
        alone = len(system) + len(turn.input_ids) + self.cfg.max_new_tokens
        if alone > self.context_budget:
            raise ValueError(f"this turn needs {len(turn.input_ids)} tokens and its reply up to "
                             f"{self.cfg.max_new_tokens}: more than the context budget of {self.context_budget} "
                             "tokens even without earlier turns; shorten the message")
        head = [] if self.started else system
        if self.context_tokens + len(self._pending) + len(head) + len(turn.input_ids) + self.cfg.max_new_tokens \
                > self.context_budget:
            self._rebuild(system, len(turn.input_ids))
            head = []
        lead = self._pending + head
        ids = torch.cat([torch.tensor(lead, dtype=torch.long), turn.input_ids])[None]
        mask = torch.cat([torch.zeros(len(lead), dtype=torch.bool), turn.audio_patch_mask])[None]
        return ids, mask, turn.audios, len(lead)

    def _rebuild(self, system: list[int], turn_tokens: int) -> None:
        """Empty the cache and queue the system turn plus the newest exchanges (as text) that fit the budget."""
        pairs = [(self.history[i][1], self.history[i + 1][1]) for i in range(0, len(self.history) - 1, 2)]
        pairs = [(h, a) for h, a in pairs if h is not None]       # an untranscribed spoken turn cannot be text
        costs = [len(exchange_ids(self.prompts, h, a or "")) for h, a in pairs]
        room = self.context_budget - len(system) - turn_tokens - self.cfg.max_new_tokens
        k = newest_that_fit(costs, room)
        self.dropped_turns += len(self.history) // 2 - k
        self.history = [entry for h, a in pairs[len(pairs) - k:] for entry in (("human", h), ("assistant", a))]
        ids = system + [t for h, a in pairs[len(pairs) - k:] for t in exchange_ids(self.prompts, h, a or "")]
        self.state = None
        if self.lean is not None:
            self.lean.reset()
        self.dialogue_ids, self.dialogue_audio = [], []
        self._pending, self.started = ids, True

    @torch.no_grad()
    def _open(self, ids: torch.Tensor, mask: torch.Tensor, audios: list[np.ndarray], clock: _Clock) -> torch.Tensor:
        """Embed (encoder) and append the new tokens to the cache (prefill); returns the next-token logits."""
        t = time.perf_counter()
        ids = ids.to(self.device)
        if audios:
            audio = torch.from_numpy(audios[0])[None, None].to(self.device)
            embeds = self.backbone.embed(ids, audio, torch.tensor([[audio.shape[-1]]], device=self.device),
                                         mask.to(self.device))
        else:
            embeds = self.backbone.embed(ids)
        t = clock.add("encoder", t)
        if self.lean is not None:
            logits = self.lean.forward(embeds)[0][:, -1]
        elif self.state is None:
            cache = DynamicCache(config=self.backbone.model.config)
            out = self.backbone.decode(embeds, torch.ones_like(ids), past_key_values=cache, use_cache=True)
            self.state = DecodeState(out.past_key_values, torch.ones_like(ids), torch.tensor([ids.shape[1]],
                                                                                              device=self.device))
            logits = out.logits[:, -1]
        else:
            logits, _, self.state = self.backbone.extend(self.state, ids, inputs_embeds=embeds)
        clock.add("prefill", t)
        return logits

    def turn(self, audio: np.ndarray | None = None, text: str | None = None,
             sample_rate: int = 16000) -> Iterator[Event]:
        """Generate the reply to one user turn (speech at 16 kHz, or typed text), streaming its events."""
        clock = _Clock()
        self._cancel.clear()
        ids, mask, audios, lead = self._prompt(audio, text, sample_rate)
        logits = self._open(ids, mask, audios, clock)
        self.started = True
        self._human_start = len(self.dialogue_ids) + lead  # this turn's <|BOT|>human starts here
        self.dialogue_ids += ids[0].tolist()
        self._reply_start = len(self.dialogue_ids)         # the reply's first token goes here
        self.dialogue_audio += audios
        self._pending = []
        self.history.append(("human", text if text is not None else None))
        yield from self._decode(logits, clock, audios[0] if audios else None)

    def _emit(self, clock: _Clock, event: Event) -> Iterator[Event]:
        """Yield an event and keep the caller's time out of the engine's accounts."""
        t = time.perf_counter()
        yield event
        clock.outside += time.perf_counter() - t

    @torch.no_grad()
    def _decode(self, logits: torch.Tensor, clock: _Clock, clip: np.ndarray | None) -> Iterator[Event]:
        L, cfg = self.layout, self.connector.cfg
        seg_frames = cfg.segment_tokens * cfg.group
        stream = self.connector.streaming(batch_size=1)
        self.motion_decoder.reset()
        speech = self.detok.stream() if self.detok is not None else None      # None: tokens only (benchmarks)
        text_ids: list[int] = []
        text_out = ""
        hidden_buf: list[torch.Tensor] = []
        codes = frames_out = audio_pos = 0
        sr = self.detok.sample_rate if self.detok is not None else 16000
        ttft = ttfa = float("nan")
        in_speech, ended, decoded = True, False, 0
        force = self.cfg.force_audio_tokens
        decoder = ReplyDecoder(L, self.text_layout, self.sampling, self._rng, seen=self.dialogue_ids)
        audio_slice = slice(L.audio_offset, L.audio_offset + L.num_audio_codes)
        for _ in range(self.cfg.max_new_tokens if force is None else force + 1):
            if self._cancel.is_set():
                break
            t = time.perf_counter()
            if force is None:
                nxt = decoder.choose(logits[0])
            else:
                nxt = L.eot if codes == force else L.audio_offset + int(logits[0, audio_slice].argmax())
            if nxt == L.eot:
                ended = True
                clock.add("decode", t)
                break
            if self.lean is not None:
                logits, hidden = self.lean.step(nxt)
                logits, hidden = logits[None], hidden[None]
            else:
                logits, hidden, self.state = self.backbone.step(torch.tensor([[nxt]], device=self.device),
                                                                self.state)
            clock.add("decode", t)
            decoded += 1
            self.dialogue_ids.append(nxt)
            if L.is_audio(nxt):
                codes += 1
                if codes == 1:
                    ttft = clock.now_ms()
                t = time.perf_counter()
                chunks = speech.push([nxt - L.audio_offset]) if speech is not None else []
                clock.add("detokenizer", t)
                for pcm in chunks:
                    yield from self._emit(clock, AudioChunk(pcm, audio_pos / sr, sr, clock.now_ms()))
                    audio_pos += len(pcm)
                hidden_buf.append(hidden)
                if len(hidden_buf) == seg_frames:
                    frames = self._motion(stream, hidden_buf, clock)
                    hidden_buf = []
                    if frames_out == 0:
                        ttfa = clock.now_ms()
                    yield from self._emit(clock, MotionChunk(frames, frames_out, clock.now_ms()))
                    frames_out += len(frames)
            elif nxt == L.tts_end:
                in_speech = False
            elif L.is_text(nxt):                 # not <tts_pad> / <audio_6561> / other special tokens
                text_ids.append(nxt)
                full = self.tok.decode(text_ids, skip_special_tokens=True)
                if full.startswith(text_out) and len(full) > len(text_out):
                    delta, text_out = full[len(text_out):], full
                    yield from self._emit(clock, TextDelta(delta, clock.now_ms()))
        cancelled = not ended
        # Close the reply in the cache at the start of the next turn, the way training sequences close it.
        if self.cfg.context_replies == "text":
            # Back to "<|BOT|>assistant\n" (drop <tts_start> and the interleaved reply), then the reply as text.
            self._crop(self._reply_start - 1)
            self._pending = text_ids + [L.eot]
        else:
            self._pending = ([L.tts_end] if in_speech and cancelled else []) + [L.eot]
        if hidden_buf:                                   # the last, shorter segment
            frames = self._motion(stream, hidden_buf, clock)[:codes - frames_out]
            if frames_out == 0:
                ttfa = clock.now_ms()
            yield from self._emit(clock, MotionChunk(frames, frames_out, clock.now_ms()))
            frames_out += len(frames)
        t = time.perf_counter()
        tail = speech.flush() if codes and speech is not None else np.zeros(0, np.float32)
        clock.add("detokenizer", t)
        if len(tail):
            yield from self._emit(clock, AudioChunk(tail, audio_pos / sr, sr, clock.now_ms()))
        text = self.tok.decode(text_ids, skip_special_tokens=True).strip()
        self.history.append(("assistant", text))
        wall = clock.now_ms()
        heard = None
        if clip is not None and self.cfg.transcribe:
            # After the reply (off the latency path): the spoken turn becomes its transcript in the cache.
            heard = transcribe(self.backbone, self.prompts, clip, self.prompts.frontend.sample_rate, self.device)
            self.history[-2] = ("human", heard)
            if self.cfg.context_replies == "text":
                self._crop(self._human_start)
                self.dialogue_audio.pop()                  # the clip is no longer in the cache
                turn = self.prompts.build([Message("human", heard)], reply="text").input_ids.tolist()
                self._pending = turn + text_ids + [L.eot]
        busy = wall - 1000 * clock.outside
        speech_s = codes / 25
        stage_sum = sum(clock.stages.values())
        yield TurnMetrics(ttft_ms=ttft, ttfa_ms=ttfa, rtf=busy / 1000 / speech_s if codes else float("nan"),
                          wall_ms=wall, speech_s=speech_s, stages=dict(clock.stages), decode_tokens=decoded,
                          overhead_ratio=busy / stage_sum if stage_sum else float("nan"), cancelled=cancelled,
                          text=text, heard=heard)

    def _crop(self, n: int) -> None:
        """Keep the first ``n`` tokens of the dialogue in the cache (both modes) and in ``dialogue_ids``."""
        if self.lean is not None:
            self.lean.length = n
        else:
            drop = int(self.state.attention_mask.shape[1]) - n
            if drop > 0:          # transformers 5: a negative count removes that many trailing positions
                self.state.cache.crop(-drop)
            self.state.attention_mask = self.state.attention_mask[:, :n]
            self.state.next_position = torch.full_like(self.state.next_position, n)
        del self.dialogue_ids[n:]

    def _motion(self, stream, hidden_buf: list[torch.Tensor], clock: _Clock) -> np.ndarray:
        """One connector segment: hidden states [F, d] -> RVQ codes -> motion frames [F', 58] (float32)."""
        t = time.perf_counter()
        h = torch.stack(hidden_buf, 1).to(self.connector.proj.weight.dtype)       # [1, F, d]
        codes = stream.step(h)[0]
        t = clock.add("connector", t)
        if self.cfg.motion_decode == "expected":
            z = self.model.motion_tokenizer.model.expected_latent(stream.last_logits[0].cpu())
            frames = self.motion_decoder.step_latent(z).float().numpy()
        else:
            frames = self.motion_decoder.step(codes.cpu()).float().numpy()
        clock.add("tokenizer_decode", t)
        return frames
