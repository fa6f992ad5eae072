"""The streaming engine on a tiny trained checkpoint: events, streaming = batch, cache across turns, barge-in."""
import numpy as np
import pytest
import torch

from a2llm.data import load_flame_qa
from a2llm.engine import AudioChunk, Engine, EngineConfig, MotionChunk, TextDelta, TurnMetrics
from a2llm.generate import Generator, question
from a2llm.lalm.detokenizer import load_detokenizer
from a2llm.lalm.prompt import Message
from a2llm.model import A2LLM, load_checkpoint_tokenizer


@pytest.fixture(scope="module")
def parts(tiny_run):
    ckpt = tiny_run[2]
    return A2LLM.from_pretrained(ckpt), load_checkpoint_tokenizer(ckpt), load_detokenizer(ckpt)


@pytest.fixture(scope="module")
def clip(tiny_corpus):
    return load_flame_qa(tiny_corpus, "test")[0].question_audio


def _engine(parts, **cfg):
    return Engine(*parts, EngineConfig(**cfg))


def test_a_turn_streams_motion_before_it_ends_on_one_timeline(parts, clip):
    events = list(_engine(parts, force_audio_tokens=60).turn(audio=clip))
    metrics = events[-1]
    assert isinstance(metrics, TurnMetrics) and not any(isinstance(e, TurnMetrics) for e in events[:-1])
    motion = [e for e in events if isinstance(e, MotionChunk)]
    audio = [e for e in events if isinstance(e, AudioChunk)]
    assert events.index(motion[0]) < len(events) - 2 and motion[0].t_ms < metrics.wall_ms   # first motion mid-turn
    assert [m.start_frame for m in motion] == list(np.cumsum([0] + [len(m.frames) for m in motion[:-1]]))
    assert sum(len(m.frames) for m in motion) == 60 and metrics.speech_s == pytest.approx(60 / 25)
    detok = parts[2]
    assert sum(len(a.pcm) for a in audio) == 60 * detok.samples_per_token
    assert [a.start_s for a in audio] == pytest.approx(list(np.cumsum([0] + [len(a.pcm) for a in audio[:-1]]) /
                                                            detok.sample_rate))
    assert metrics.ttft_ms <= metrics.ttfa_ms <= metrics.wall_ms and metrics.rtf > 0
    assert set(metrics.stages) >= {"encoder", "prefill", "decode", "connector", "tokenizer_decode", "detokenizer"}
    assert metrics.decode_tokens == 60 and not metrics.cancelled


def test_streamed_motion_equals_the_batch_generator(parts, clip):
    model, tok, _ = parts
    events = list(_engine(parts, max_new_tokens=40).turn(audio=clip))
    streamed = np.concatenate([e.frames for e in events if isinstance(e, MotionChunk)] or [np.zeros((0, 58))])
    text = "".join(e.text for e in events if isinstance(e, TextDelta)).strip()
    sample, task = question(audio=clip)
    batch = Generator(model, tok).answer([sample], task, max_new_tokens=40)[0]
    assert text == batch.text.strip() == events[-1].text
    np.testing.assert_allclose(streamed, batch.motion, atol=1e-5)


def test_code_motion_decoding_streams_as_the_batch_generator_does(parts, clip):
    """motion_decode="codes" (the paper's decoding; "expected", the default, is tested above): streamed = batch, on
    the same timeline (tests/motion/test_tokenizer.py checks the expected latent itself)."""
    model, tok, _ = parts
    events = list(_engine(parts, max_new_tokens=40, motion_decode="codes").turn(audio=clip))
    streamed = np.concatenate([e.frames for e in events if isinstance(e, MotionChunk)])
    sample, task = question(audio=clip)
    batch = Generator(model, tok, motion_decode="codes").answer([sample], task, max_new_tokens=40)[0]
    codes = Generator(model, tok).answer([sample], task, max_new_tokens=40)[0]
    np.testing.assert_allclose(streamed, batch.motion, atol=1e-5)
    assert batch.motion.shape == codes.motion.shape
    with pytest.raises(ValueError, match="motion_decode"):
        EngineConfig(motion_decode="mean")


def test_the_cache_carries_the_dialogue_across_turns(parts, clip):
    engine = _engine(parts, force_audio_tokens=12, transcribe=False)
    list(engine.turn(audio=clip))
    list(engine.turn(text="How was the party?"))
    assert engine.context_tokens == len(engine.dialogue_ids)
    # The engine's cache must equal a fresh prefill of the whole dialogue: the next step gives the same state.
    bb, L = engine.backbone, engine.layout
    ids = torch.tensor([engine.dialogue_ids])
    audio = torch.from_numpy(engine.dialogue_audio[0])[None, None]
    _, _, fresh = bb.prefill(ids, None, audio, torch.tensor([[audio.shape[-1]]]), ids == L.audio_patch)
    nxt = torch.tensor([[L.audio_offset + 3]])
    _, h_fresh, _ = bb.step(nxt, fresh)
    _, h_engine, _ = bb.step(nxt, engine.state)
    torch.testing.assert_close(h_engine, h_fresh, atol=1e-4, rtol=1e-4)
    assert [r for r, _ in engine.history] == ["human", "assistant", "human", "assistant"]


def test_barge_in_stops_within_one_step_and_keeps_the_dialogue_consistent(parts, clip):
    engine = _engine(parts, force_audio_tokens=200, context_replies="speech")
    events = []
    for e in engine.turn(audio=clip):
        events.append(e)
        if isinstance(e, MotionChunk) and len(events) < 10:
            engine.cancel()
    metrics = events[-1]
    assert metrics.cancelled
    seg = engine.connector.cfg.segment_tokens * engine.connector.cfg.group
    assert metrics.decode_tokens == seg               # no step after the one that completed the first segment
    assert engine._pending == [engine.layout.tts_end, engine.layout.eot]
    again = list(engine.turn(text="Are you still there?"))
    assert isinstance(again[-1], TurnMetrics)
    L, d = engine.layout, engine.dialogue_ids
    closes = [i for i in range(len(d) - 2) if d[i:i + 3] == [L.tts_end, L.eot, L.bot]]
    assert len(closes) == 1, "the cut reply was closed once, before the next user turn"
    assert [r for r, _ in engine.history] == ["human", "assistant", "human", "assistant"]


def test_bad_turns_are_refused_and_leave_the_dialogue_alone(parts, clip):
    engine = _engine(parts, force_audio_tokens=5)
    list(engine.turn(text="Hello"))
    before = list(engine.dialogue_ids)
    with pytest.raises(ValueError, match="either audio"):
        list(engine.turn())
    with pytest.raises(ValueError, match="empty"):
        list(engine.turn(text="   "))
    with pytest.raises(ValueError, match="Hz"):
        list(engine.turn(audio=clip, sample_rate=8000))
    assert engine.dialogue_ids == before
    with pytest.raises(ValueError, match="force_audio_tokens"):
        EngineConfig(force_audio_tokens=0)


def test_optimized_mode_gives_the_base_modes_turn(tiny_run, clip):
    ckpt = tiny_run[2]
    runs = []
    for optimized in (False, True):
        from a2llm.engine import Engine as E

        engine = E.from_checkpoint(ckpt, EngineConfig(force_audio_tokens=30, optimized=optimized))
        turns = [list(engine.turn(audio=clip)), list(engine.turn(text="And then?"))]
        runs.append((turns, engine.dialogue_ids, engine.context_tokens))
    (base, ids_b, n_b), (opt, ids_o, n_o) = runs
    assert ids_b == ids_o and n_b == n_o == len(ids_b)
    for tb, to in zip(base, opt):
        mb = np.concatenate([e.frames for e in tb if isinstance(e, MotionChunk)])
        mo = np.concatenate([e.frames for e in to if isinstance(e, MotionChunk)])
        np.testing.assert_allclose(mb, mo, atol=1e-3)


def test_text_context_keeps_the_reply_as_training_context_turns_have_it(parts, clip):
    engine = _engine(parts, max_new_tokens=30, transcribe=False)
    list(engine.turn(audio=clip))
    first = list(engine.dialogue_ids)
    L = engine.layout
    assert first[-1] == L.bot or first[-2:] != [L.tts_start]       # the cache ends before <tts_start>
    assert L.tts_start not in first
    list(engine.turn(text="How was the party?"))
    d = engine.dialogue_ids
    reply = d[len(first):d.index(L.eot, len(first)) + 1]
    assert all(not L.is_audio(t) for t in reply) and reply[-1] == L.eot
    assert engine.context_tokens == len(d)
    ids = torch.tensor([d])
    audio = torch.from_numpy(engine.dialogue_audio[0])[None, None]
    bb = engine.backbone
    _, _, fresh = bb.prefill(ids, None, audio, torch.tensor([[audio.shape[-1]]]), ids == L.audio_patch)
    nxt = torch.tensor([[L.audio_offset + 1]])
    torch.testing.assert_close(bb.step(nxt, engine.state)[1], bb.step(nxt, fresh)[1], atol=1e-4, rtol=1e-4)


def test_sampling_is_seeded_and_greedy_stays_nanos_default(parts):
    from a2llm.generate import GREEDY, Sampling

    assert _engine(parts).sampling == GREEDY
    replies = []
    for seed in (3, 3, 4):
        engine = _engine(parts, max_new_tokens=30, context_replies="speech",
                         sampling=Sampling(temperature=1.5, top_p=0.95, repetition_penalty=1.05, seed=seed))
        list(engine.turn(text="How was the party?"))
        replies.append(engine.dialogue_ids[engine._reply_start:])
    assert replies[0] == replies[1] and replies[0] != replies[2]


def _same_as_fresh_prefill(engine):
    """The engine's cache equals a fresh prefill of its dialogue ids (text only): the next step agrees."""
    bb, L = engine.backbone, engine.layout
    ids = torch.tensor([engine.dialogue_ids])
    assert L.audio_patch not in engine.dialogue_ids and not engine.dialogue_audio
    _, _, fresh = bb.prefill(ids, None)
    nxt = torch.tensor([[L.audio_offset + 2]])
    torch.testing.assert_close(bb.step(nxt, engine.state)[1], bb.step(nxt, fresh)[1], atol=1e-4, rtol=1e-4)


def test_a_spoken_turn_stays_in_the_dialogue_as_its_transcript(parts, clip):
    engine = _engine(parts, max_new_tokens=40)
    metrics = list(engine.turn(audio=clip))[-1]
    # the transcript is the model's own ASR subtask on the clip it heard
    model, tok, _ = parts
    s, _ = question(audio=clip)
    asr = Generator(model, tok).answer([s], "asr", with_motion=False)[0].text
    assert metrics.heard == asr and engine.history[0] == ("human", asr)
    list(engine.turn(text="How was the party?"))
    L = engine.layout
    human = engine.prompts.build([Message("human", asr)], reply=None).input_ids.tolist()
    d = engine.dialogue_ids
    assert any(d[i:i + len(human)] == human for i in range(len(d)))       # the transcript, as a text turn
    _same_as_fresh_prefill(engine)
    assert L.tts_start not in d                                            # replies too stay as text


def test_fifty_turns_never_overflow_the_context_budget(parts):
    budget, reply = 160, 12
    engine = _engine(parts, force_audio_tokens=reply, max_new_tokens=reply + 1, context_budget=budget)
    system = engine.prompts.build([Message("system", engine.cfg.system_prompt)], reply=None).input_ids.tolist()
    for i in range(50):
        events = list(engine.turn(text=["How was the concert?", "Why?", "What about the movie?"][i % 3]))
        assert isinstance(events[-1], TurnMetrics)
        assert engine.context_tokens <= budget
        assert engine.dialogue_ids[:len(system)] == system                # the system turn is always kept
    assert engine.dropped_turns > 30 and len(engine.history) < 20
    list(engine.turn(text="And you?"))
    _same_as_fresh_prefill(engine)


def test_a_turn_that_cannot_fit_even_alone_is_refused_and_changes_nothing(parts):
    engine = _engine(parts, force_audio_tokens=5, max_new_tokens=6, context_budget=80)
    list(engine.turn(text="Hello"))
    before, history = list(engine.dialogue_ids), list(engine.history)
    with pytest.raises(ValueError, match="context budget"):
        list(engine.turn(text="word " * 200))
    assert engine.dialogue_ids == before and engine.history == history
    list(engine.turn(text="How was the concert?"))                          # the session goes on
