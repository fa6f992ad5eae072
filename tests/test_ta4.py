"""Step-Audio-2's "ta4" layout in generation: the slot rule (text slot: text, audio slot: audio codes, pads),
on hand-made logits and on a tiny random model in the released file layout (tests/lalm/fixture.py)."""
import numpy as np
import pytest
import torch

from a2llm.generate import GREEDY, Generator, ReplyDecoder, Sampling, question
from a2llm.lalm.tokens import STEP_AUDIO2_LAYOUT as L, ta4_interleave

V = 158720                        # the real vocabulary: wider than the tokenizer (158,258 ids)


def _rebuilt(tokens: list[int]) -> list[int]:
    """The ta4 layout of the text and audio ids in ``tokens``, closed as ``tokens`` is: any free-running
    sequence that follows the rule equals it."""
    text = [t for t in tokens if L.is_text(t)]
    audio = [t for t in tokens if L.is_audio(t)]
    body = ta4_interleave(text, audio, L)
    return body + [t for t in tokens[len(body):] if t in (L.tts_end, L.eot)]


def _logits(**values) -> torch.Tensor:
    x = torch.full((V,), -5.0)
    for ids, v in values.values():
        x[ids] = v
    return x


def test_the_slots_force_the_kind_of_each_token_and_place_the_pads():
    a3, a7, a1, txt, beyond = L.audio_id(3), L.audio_id(7), L.audio_id(1), 42, 158300
    dec = ReplyDecoder(L, "ta4")
    picks = []
    # text slot: the best *text* token, though an audio code, <tts_end> and an id past the codes are likelier
    picks.append(dec.choose(_logits(a=(a3, 5.0), t=(txt, 1.0), e=(L.tts_end, 9.0), b=(beyond, 9.0))))
    for _ in range(4):   # audio slots: audio codes only
        picks.append(dec.choose(_logits(t=(txt, 9.0), a=(a7, 1.0), p=(L.tts_pad, 8.0))))
    picks.append(dec.choose(_logits(p=(L.tts_pad, 3.0), a=(a3, 9.0))))          # the text ends: <tts_pad>
    for _ in range(4):
        picks.append(dec.choose(_logits(a=(a1, 1.0))))
    picks.append(dec.choose(_logits(t=(txt, 9.0), p=(L.tts_pad, 1.0))))         # text used up: pads only
    picks.append(dec.choose(_logits(a=(a1, 1.0))))
    picks.append(dec.choose(_logits(x=(L.audio_pad, 4.0), a=(a1, 1.0))))        # the speech ends: <audio_6561>
    picks.append(dec.choose(_logits(t=(txt, 9.0), a=(a1, 9.0), p=(L.tts_pad, 9.0))))  # both done: <tts_end>
    picks.append(dec.choose(_logits(t=(txt, 9.0), a=(a1, 9.0))))                # then <|EOT|>
    assert picks == [txt, a7, a7, a7, a7, L.tts_pad, a1, a1, a1, a1, L.tts_pad, a1, L.audio_pad,
                     L.tts_end, L.eot]

    # text that outlasts the speech (T = 4 > A = 2): T - A audio pads, then chunks of text alone, then <tts_end>
    dec = ReplyDecoder(L, "ta4")
    seq = [dec.choose(_logits(t=(txt, 1.0), a=(a3, 9.0)))]
    seq += [dec.choose(_logits(a=(a3, 1.0), t=(txt, 9.0))) for _ in range(2)]
    seq.append(dec.choose(_logits(x=(L.audio_pad, 2.0), a=(a3, 1.0))))          # the speech ends
    seq.append(dec.choose(_logits(x=(L.audio_pad, 2.0), a=(a3, 9.0))))          # no audio codes any more
    seq += [dec.choose(_logits(t=(txt + k, 1.0), a=(a3, 9.0))) for k in (1, 2, 3)]
    seq.append(dec.choose(_logits(e=(L.tts_end, 2.0), t=(txt, 1.0))))
    seq.append(dec.choose(_logits(t=(txt, 9.0))))
    assert seq == ta4_interleave([txt, txt + 1, txt + 2, txt + 3], [a3, a3], L) + [L.tts_end, L.eot]
    assert seq == [txt, a3, a3, L.audio_pad, L.audio_pad, txt + 1, txt + 2, txt + 3, L.tts_end, L.eot]

    # a text reply (ASR) on ta4: text and <|EOT|> only
    dec = ReplyDecoder(L, "ta4", speech=False)
    assert dec.choose(_logits(a=(a3, 9.0), p=(L.tts_pad, 9.0), t=(txt, 1.0))) == txt
    assert dec.choose(_logits(a=(a3, 9.0), e=(L.eot, 1.0))) == L.eot


def test_released_sampling_draws_within_the_slot_kinds():
    g = torch.Generator().manual_seed(0)
    dec = ReplyDecoder(L, "ta4", Sampling.released(seed=1))
    tokens = [dec.choose(6 * torch.randn(V, generator=g)) for _ in range(60)]
    kinds = "".join("a" if L.is_audio(t) else "t" if L.is_text(t) else "s" for t in tokens)
    assert kinds == "taaaa" * 12 and tokens == _rebuilt(tokens)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A²-LLM on the tiny random Step-Audio-2 checkpoint (released layout, real special ids) + a tiny motion part."""
    from a2llm.connector import ConnectorConfig
    from a2llm.lalm.loader import load_step_audio2
    from a2llm.model import A2LLM, A2LLMConfig
    from a2llm.motion.rvq import MotionRVQVAE, RVQConfig
    from a2llm.motion.tokenizer import MotionTokenizer
    from tests.lalm.fixture import write_tiny_step_audio2

    backbone, tok = load_step_audio2(write_tiny_step_audio2(tmp_path_factory.mktemp("sa2")), dtype=torch.float32)
    torch.manual_seed(0)
    rvq = RVQConfig(width=16, num_res_blocks=1, dilations=(1,), latent_dim=16, codebook_size=16)
    connector = ConnectorConfig.nano(16, hidden=16, heads=2, ffn=32, codebook_size=16,
                                     num_quantizers=rvq.num_quantizers)
    cfg = A2LLMConfig(name="tiny-step-audio2", backbone=backbone.config, connector=connector, rvq=rvq)
    return A2LLM(cfg, MotionTokenizer(MotionRVQVAE(rvq)), backbone=backbone, with_lora=False), tok


def test_the_generator_decodes_a_tiny_step_audio2_model_in_ta4(tiny_model):
    model, tok = tiny_model
    gen = Generator(model, tok)
    assert gen.layout.audio_pad == L.audio_pad and gen.layout.num_audio_codes == 6561
    assert gen.text_layout == "ta4" and gen.sampling == Sampling.released()
    s, task = question(text="Hi there")
    a = gen.answer([s], task, max_new_tokens=21)[0]
    assert len(a.tokens) == 21 and a.tokens == _rebuilt(a.tokens)
    assert "".join("a" if L.is_audio(t) else "t" for t in a.tokens[:10]) == "taaaataaaa"
    assert len(a.audio_codes) == len(a.motion) == sum(L.is_audio(t) for t in a.tokens)
    assert (a.audio_codes < 6561).all()
    # seeded: the same call again draws the same reply; another seed another one; greedy obeys the slots too
    assert gen.answer([s], task, max_new_tokens=21)[0].tokens == a.tokens
    assert gen.answer([s], task, max_new_tokens=21, sampling=Sampling.released(seed=5))[0].tokens != a.tokens
    g = gen.answer([s], task, max_new_tokens=21, sampling=GREEDY)[0]
    assert g.tokens == _rebuilt(g.tokens)


def test_forced_text_on_ta4_fills_text_slots_then_pads(tiny_model):
    model, tok = tiny_model
    gen = Generator(model, tok, sampling=GREEDY)
    s, _ = question(text="Read this")
    text = tok.encode("Hi", add_special_tokens=False)
    a = gen.answer([s], "tts", max_new_tokens=24, with_motion=False, force_text=[text])[0]
    kinds = "".join("a" if L.is_audio(t) else "p" if t == L.tts_pad else "t" if L.is_text(t) else "e"
                    for t in a.tokens)
    assert [t for t in a.tokens if L.is_text(t)] == text
    body = kinds.split("e")[0]
    assert body == ("taaaa" * 2 + "paaaa" * 10)[:len(body)]


def test_the_engine_streams_a_ta4_reply_without_pads(tiny_model):
    from a2llm.engine import Engine, EngineConfig, MotionChunk, TurnMetrics

    model, tok = tiny_model
    engine = Engine(model, tok, None, EngineConfig(device="cpu", max_new_tokens=26, context_replies="speech"))
    assert engine.text_layout == "ta4" and engine.sampling == Sampling.released()
    events = list(engine.turn(text="Hello"))
    start = engine.dialogue_ids.index(L.tts_start) + 1
    reply = engine.dialogue_ids[start:]
    assert len(reply) == 26 and reply == _rebuilt(reply)
    n_codes = sum(L.is_audio(t) for t in reply)
    frames = sum(len(e.frames) for e in events if isinstance(e, MotionChunk))
    assert frames == n_codes and isinstance(events[-1], TurnMetrics) and events[-1].speech_s == n_codes / 25
    # reset re-seeds the draws: the dialogue replays exactly
    engine.reset()
    list(engine.turn(text="Hello"))
    assert engine.dialogue_ids[start:] == reply
    assert np.isfinite(np.concatenate([e.frames for e in events if isinstance(e, MotionChunk)])).all()
