"""Sampling (temperature, top-k, top-p, repetition penalty, seed) on hand-computed small logits."""
import math

import pytest
import torch

from a2llm.generate import (GREEDY, Picker, ReplyDecoder, Sampling, apply_repetition_penalty, default_sampling,
                            filter_top_k, filter_top_p, next_token, sample_token)
from a2llm.lalm.tokens import TokenLayout

INF = float("-inf")


def test_seeded_sampling_is_reproducible():
    x = torch.randn(50, generator=torch.Generator().manual_seed(0))
    s = Sampling(temperature=1.0, seed=7)

    def draws(seed):
        p = Picker(Sampling(temperature=1.0, seed=seed))
        return [p.pick(x) for _ in range(40)]

    assert draws(7) == draws(7) and draws(7) != draws(8)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert [sample_token(x, s, g1) for _ in range(20)] == [sample_token(x, s, g2) for _ in range(20)]


def test_temperature_to_zero_is_greedy():
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        x = torch.randn(30, generator=g)
        best = int(x.argmax())
        assert sample_token(x, GREEDY) == best
        assert all(sample_token(x, Sampling(temperature=1e-3), g) == best for _ in range(5))
    assert Sampling().greedy and not Sampling.released().greedy


def test_top_p_keeps_the_nucleus_and_drops_the_tail():
    x = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    # 0.5 < 0.75: token 1 stays; tokens 0 + 1 already hold 0.8 >= 0.75: tokens 2 and 3 go
    assert torch.equal(torch.isinf(filter_top_p(x, 0.75)), torch.tensor([False, False, True, True]))
    assert torch.equal(torch.isinf(filter_top_p(x, 0.85)), torch.tensor([False, False, False, True]))
    assert torch.equal(torch.isinf(filter_top_p(x, 0.1)), torch.tensor([False, True, True, True]))
    assert torch.equal(filter_top_p(x, 1.0), x)
    g = torch.Generator().manual_seed(0)
    picks = {sample_token(x, Sampling(temperature=1.0, top_p=0.75), g) for _ in range(300)}
    assert picks == {0, 1}
    # wider than the first top-k window the nucleus is still exact: 1,000 equal tokens, top-p 0.5 keeps 500
    flat = torch.zeros(1000)
    assert int((~torch.isinf(filter_top_p(flat, 0.5))).sum()) == 500


def test_top_k():
    x = torch.tensor([1.0, 3.0, 2.0, 0.0])
    assert filter_top_k(x, 2).tolist() == [INF, 3.0, 2.0, INF] and torch.equal(filter_top_k(x, 0), x)


def test_repetition_penalty_lowers_a_repeated_tokens_probability():
    x = torch.tensor([2.0, -1.0, 0.5])
    seen = torch.tensor([True, True, False])
    # positive logits are divided, negative ones multiplied: both seen tokens get less likely
    assert apply_repetition_penalty(x, seen, 2.0).tolist() == [1.0, -2.0, 0.5]
    before = torch.softmax(x, 0)
    after = torch.softmax(apply_repetition_penalty(x, seen, 2.0), 0)
    assert after[0] < before[0] and after[1] < before[1] and after[2] > before[2]
    # e^1 / (e^1 + e^-2 + e^0.5): the hand-computed probability of token 0 after the penalty
    assert float(after[0]) == pytest.approx(math.e / (math.e + math.exp(-2) + math.exp(0.5)), rel=1e-6)
    # the picker remembers what it has seen (prompt + fed tokens): greedy with a penalty turns away from a repeat
    y = torch.tensor([1.0, 0.9, -3.0])
    p = Picker(Sampling(repetition_penalty=1.5), seen=[2])
    assert p.pick(y) == 0
    p.feed(0)
    assert p.pick(y) == 1                       # 1.0 / 1.5 < 0.9


def test_sampling_stays_within_the_kind_the_layout_allows():
    # a tiny vocabulary: text 0..9, specials 10..18, audio codes 19..26 (nano's order)
    L = TokenLayout(endoftext=10, bot=11, eot=12, audio_start=13, audio_end=14, audio_patch=15, tts_start=16,
                    tts_end=17, tts_pad=18, audio_offset=19, num_audio_codes=8, vocab_size=27)
    x = torch.full((27,), -5.0)
    x[19:27] = 0.5                      # speaking is likelier in total ...
    x[3] = 1.5                          # ... than the single best token, a word, would suggest
    warm = Sampling(temperature=2.0, seed=0)
    dec = ReplyDecoder(L, "word", warm)
    assert all(L.is_audio(dec.choose(x)) for _ in range(50))
    dec = ReplyDecoder(L, "chunked", warm)
    assert {L.is_audio(dec.choose(x)) for _ in range(100)} == {True, False}
    # greedy ReplyDecoder = next_token for nano's layouts
    for mode in ("word", "chunked"):
        assert ReplyDecoder(L, mode).choose(x) == next_token(x, L, mode)
    assert default_sampling("ta4") == Sampling(0.7, 0.9, 0, 1.05) and default_sampling("word") == GREEDY


def test_bad_settings_are_refused():
    for bad in (dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1), dict(repetition_penalty=0)):
        with pytest.raises(ValueError):
            Sampling(**bad)
