"""Motion Connector: streaming = batch, causality, loss, padding, size of the full model, checkpoints, state."""
import dataclasses
import json

import pytest
import torch

from a2llm.checkpoint import save_component, update_manifest
from a2llm.connector import (PAD_TOKEN, ConnectorConfig, MotionConnector, sample_tokens)

D = 24          # tiny LLM hidden size
G = 5


def tiny(**overrides) -> MotionConnector:
    torch.manual_seed(0)
    return MotionConnector(ConnectorConfig.nano(D, **overrides)).eval()


def random_problem(B: int = 2, T: int = 53, seed: int = 0, cfg: ConnectorConfig | None = None):
    g = torch.Generator().manual_seed(seed)
    cfg = cfg or ConnectorConfig.nano(D)
    hidden = torch.randn(B, T, D, generator=g)
    tokens = torch.randint(0, cfg.codebook_size, (B, -(-T // G), cfg.num_quantizers), generator=g)
    return hidden, tokens


def valid_mask(token_lengths: torch.Tensor, N: int) -> torch.Tensor:
    return torch.arange(N)[None] < token_lengths[:, None]


@pytest.mark.parametrize("S,W", [(1, 3), (2, 3), (3, 2), (2, 16)])
def test_generate_equals_batch_forward_fed_its_own_tokens(S, W):
    model = tiny(segment_tokens=S, history_tokens=W)
    hidden, _ = random_problem()
    lengths = torch.tensor([53, 31])           # 11 and 7 tokens: partial last tokens, a shorter sample
    gen = model.generate(hidden, lengths)
    assert gen.tokens.shape == (2, 11, 6) and gen.logits.shape == (2, 11, 6, 256)
    assert gen.token_lengths.tolist() == [11, 7]
    valid = valid_mask(gen.token_lengths, 11)
    assert (gen.tokens[~valid] == PAD_TOKEN).all() and (gen.tokens[valid] >= 0).all()
    with torch.no_grad():
        batch = model(hidden, gen.tokens, lengths)
    torch.testing.assert_close(gen.logits[valid], batch.logits[valid], atol=1e-5, rtol=0)
    assert torch.equal(batch.logits[valid].argmax(-1), gen.tokens[valid])


@pytest.mark.parametrize("S", [1, 2])
def test_stream_of_raw_chunks_equals_generate(S):
    """The engine's path: a ConnectorStream fed S*5 frames at a time, the last chunk short (3 frames)."""
    model = tiny(segment_tokens=S, history_tokens=4)
    hidden, _ = random_problem(B=1, T=53)
    expected = model.generate(hidden).tokens
    with model.streaming(batch_size=1) as stream:
        chunks = [stream.step(hidden[:, i:i + stream.frames_per_segment])
                  for i in range(0, 53, stream.frames_per_segment)]
        assert stream.state.closed and stream.state.position == 11
    assert torch.equal(torch.cat(chunks, 1), expected)
    assert stream.state.position == 0           # the context manager reset it


@pytest.mark.parametrize("S", [1, 2])
def test_causality(S):
    model = tiny(segment_tokens=S)
    hidden, tokens = random_problem(B=1, T=50)
    k = 2                                        # segment k covers tokens [kS, kS + S)
    end = (k + 1) * S                            # first token after segment k
    with torch.no_grad():
        base = model(hidden, tokens).logits
        later_frames = hidden.clone()
        later_frames[:, end * G:] += torch.randn_like(later_frames[:, end * G:])
        moved = model(later_frames, tokens).logits
        later_tokens = tokens.clone()
        later_tokens[:, k * S:] = (later_tokens[:, k * S:] + 1) % 256
        retold = model(hidden, later_tokens).logits
    torch.testing.assert_close(moved[:, :end], base[:, :end], atol=1e-6, rtol=0)
    assert (moved[:, end:] - base[:, end:]).abs().max() > 1e-3
    # Teacher forcing: segment k only sees ground truth of earlier segments.
    torch.testing.assert_close(retold[:, :end], base[:, :end], atol=1e-6, rtol=0)
    assert (retold[:, end:end + S] - base[:, end:end + S]).abs().max() > 1e-3


def test_full_attention_within_a_segment():
    model = tiny(segment_tokens=2)
    hidden, tokens = random_problem(B=1, T=30)
    with torch.no_grad():
        base = model(hidden, tokens).logits
        changed = hidden.clone()
        changed[:, 3 * G:4 * G] += torch.randn(1, G, D)   # token 3, the second token of segment 1
        out = model(changed, tokens).logits
    assert (out[:, 2] - base[:, 2]).abs().max() > 1e-3        # its segment-mate sees it
    torch.testing.assert_close(out[:, :2], base[:, :2], atol=1e-6, rtol=0)


def test_loss_finite_and_decreases_when_overfitting():
    torch.manual_seed(0)
    model = MotionConnector(ConnectorConfig.nano(D, dropout=0.0)).train()
    hidden, tokens = random_problem(B=2, T=40)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(hidden, tokens, torch.tensor([40, 33]))
        assert torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert abs(losses[0] - 6 * torch.log(torch.tensor(256.0)).item()) < 3    # near uniform at the start
    assert losses[-1] < 0.5 * losses[0], losses
    torch.testing.assert_close(out.level_losses.sum(), out.loss)


def test_padding_does_not_change_loss_or_valid_logits():
    model = tiny()
    hidden, tokens = random_problem(B=2, T=53)
    lengths = torch.tensor([53, 27])                      # sample 1: 6 tokens (last one holds 2 frames)
    with torch.no_grad():
        base = model(hidden, tokens, lengths)
        junk_h, junk_t = hidden.clone(), tokens.clone()
        junk_h[1, 27:] = 1e3 * torch.randn_like(junk_h[1, 27:])
        junk_t[1, 6:] = -100                              # padding values need not be codes
        padded = model(junk_h, junk_t, lengths)
        alone = model(hidden[1:, :27], tokens[1:, :6])
    torch.testing.assert_close(padded.loss, base.loss, atol=0, rtol=0)
    torch.testing.assert_close(padded.logits[:, :6], base.logits[:, :6], atol=0, rtol=0)
    torch.testing.assert_close(alone.logits[0], base.logits[1, :6], atol=1e-5, rtol=0)
    # The loss averages over valid tokens only: changing a padded target must not move it, a valid one must.
    valid_changed = tokens.clone()
    valid_changed[1, 5] = (valid_changed[1, 5] + 1) % 256
    with torch.no_grad():
        assert model(hidden, valid_changed, lengths).loss != base.loss


def test_zero_length_samples_give_zero_loss_not_nan():
    model = tiny()
    hidden, tokens = random_problem(B=2, T=20)
    out = model(hidden, tokens, torch.tensor([0, 0]))
    assert out.loss.item() == 0.0 and torch.isfinite(out.logits).all()
    assert model(hidden, tokens, torch.tensor([20, 0])).loss > 0


def test_full_size_parameter_count_on_meta():
    with torch.device("meta"):
        model = MotionConnector(ConnectorConfig.full())
    total = model.num_parameters()
    assert total == 126_076_928                             # reported in the module docstring
    assert 0.115e9 < total < 0.13e9                         # the seed: ≈ 0.12B
    assert model.down.weight.shape == (3584, 3584, 5)       # the conv: ≈ 64M of it
    assert dataclasses.astuple(ConnectorConfig.full())[1:] == (5, 768, 6, 12, 3072, 0.1, 6, 256, 1, 16)


def test_save_load_round_trip(tmp_path):
    model = tiny(segment_tokens=2, history_tokens=5)
    folder = model.save_pretrained(tmp_path / "connector")
    config = json.loads((folder / "config.json").read_text())
    assert config["component"] == "connector" and config["segment_tokens"] == 2 and config["d_llm"] == D
    update_manifest(tmp_path, "connector", "connector")
    hidden, tokens = random_problem(T=30)
    for path in (folder, tmp_path):                          # the component folder, or the A²-LLM folder
        loaded = MotionConnector.from_pretrained(path).eval()
        assert loaded.cfg == model.cfg
        with torch.no_grad():
            torch.testing.assert_close(loaded(hidden, tokens).logits, model(hidden, tokens).logits, atol=0, rtol=0)
    save_component(tmp_path / "rvq", "rvq", model.cfg, model.state_dict())
    with pytest.raises(ValueError, match="not 'connector'"):
        MotionConnector.from_pretrained(tmp_path / "rvq")


def test_state_reset_restarts_the_turn():
    model = tiny(segment_tokens=2, history_tokens=3)
    hidden, _ = random_problem(B=1, T=60, seed=3)
    stream = model.streaming()

    def run():
        return torch.cat([stream.step(hidden[:, i:i + 10]) for i in range(0, 60, 10)], 1)

    first = run()
    state = stream.state
    assert state.position == 12 and state.keys[0].shape[2] == 3 and state.key_valid.shape == (1, 3)
    assert torch.equal(state.history, first[:, -3:])
    stream.reset()
    assert state.position == 0 and state.keys[0].shape[2] == 0 and not state.history.any()
    assert torch.equal(run(), first)


def test_short_segment_closes_the_turn_until_reset():
    model = tiny(segment_tokens=2)
    stream = model.streaming()
    stream.step(torch.randn(1, 7, D))                      # 7 frames: 2 tokens, the second padded
    with pytest.raises(RuntimeError, match="reset"):
        stream.step(torch.randn(1, 10, D))
    stream.reset()
    assert stream.step(torch.randn(1, 10, D)).shape == (1, 2, 6)


def test_sampling_is_seeded_and_top1_is_greedy():
    model = tiny()
    hidden, _ = random_problem(B=1, T=40)
    greedy = model.generate(hidden).tokens
    assert torch.equal(model.generate(hidden, temperature=1.0, top_k=1).tokens, greedy)
    a = model.generate(hidden, temperature=1.5, generator=torch.Generator().manual_seed(1)).tokens
    b = model.generate(hidden, temperature=1.5, generator=torch.Generator().manual_seed(1)).tokens
    assert torch.equal(a, b) and not torch.equal(a, greedy)
    logits = torch.tensor([[0.0, 5.0, 4.9, -1.0]])
    picks = sample_tokens(logits.expand(500, 4), temperature=1.0, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(picks.tolist()) == {1, 2}


def test_bad_inputs_are_explained():
    model = tiny()
    hidden, tokens = random_problem(B=2, T=20)
    with pytest.raises(ValueError, match=r"\[B, T, 24\]"):
        model(hidden[..., :10], tokens)
    with pytest.raises(ValueError, match="lengths"):
        model(hidden, tokens, torch.tensor([21, 3]))
    out_of_range = tokens.clone()
    out_of_range[0, 1, 2] = 256
    with pytest.raises(ValueError, match=r"in \[0, 256\)"):
        model(hidden, out_of_range)
    with pytest.raises(ValueError, match=">= 4"):
        model(hidden, tokens[:, :3])
    with pytest.raises(ValueError, match="0 < F <= 5"):
        model.streaming(batch_size=2).step(torch.randn(2, 6, D))
    with pytest.raises(ValueError, match="temperature"):
        sample_tokens(torch.zeros(3, 4), temperature=-1)
    with pytest.raises(ValueError, match="heads"):
        ConnectorConfig.nano(D, heads=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConnectorConfig.nano(D).hidden = 3
