"""Encoder, adaptor and backbone: released names, parameter count, frame counts, audio embedding, cached decoding."""
import pytest
import torch
import torch.nn.functional as F

from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone, count_parameters
from a2llm.lalm.encoder import AudioAdapter, AudioEncoder, EncoderConfig, num_output_frames
from a2llm.lalm.frontend import LogMelFrontend, chunk_spans, num_mel_frames
from a2llm.lalm.tokens import audio_patch_counts, num_audio_patches
from tests.lalm.fixture import released_shapes

FULL_TEXT = dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                 num_key_value_heads=4, vocab_size=158720)
FULL_AUDIO = dict(n_mels=128, n_audio_ctx=1500, n_audio_state=1280, n_audio_head=20, n_audio_layer=32,
                  llm_dim=3584, kernel_size=3)
VOCAB, PATCH = 300, 299                                   # nano test vocabulary; id 299 plays <audio_patch>


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return StepAudio2Backbone(BackboneConfig.nano(VOCAB)).eval()


def _audio(*lengths: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        x[i, :n] = 0.1 * torch.randn(n, generator=g)
    return x, torch.tensor(lengths)


def test_state_dict_is_the_released_checkpoint_layout():
    with torch.device("meta"):
        full = StepAudio2Backbone(BackboneConfig.full())
    got = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    assert got == released_shapes(FULL_TEXT, FULL_AUDIO) and len(got) == 832
    assert sum(k.startswith(("model.", "lm_head.")) for k in got) == 339
    assert full.llm.model is full.model and full.llm.lm_head is full.lm_head


def test_parameter_counts_match_the_release():
    counts = count_parameters(BackboneConfig.full())
    assert counts == {"llm": 7_663_326_720, "encoder": 636_968_960, "adapter": 14_883_584, "total": 8_315_179_264}
    assert count_parameters(BackboneConfig.nano(VOCAB))["total"] < 1_500_000


@pytest.mark.parametrize("n", [321, 5555, 16000, 23456, 400000])
def test_frame_count_matches_the_prompt_rule(nano, n):
    x, lengths = _audio(n)
    mel, mel_lengths = nano.frontend(x, lengths)
    enc, enc_lengths = nano.encoder(mel, mel_lengths)
    out, out_lengths = nano.adapter(enc, enc_lengths)
    assert int(out_lengths[0]) == num_output_frames(num_mel_frames(n)) <= out.shape[1]
    assert int(out_lengths[0]) == num_audio_patches(n)


def test_long_audio_is_encoded_in_25_s_chunks(nano):
    n = 30 * 16000
    frames = nano.encode_audio(*_audio(n))
    expected = sum(num_output_frames(num_mel_frames(size)) for _, size in chunk_spans(n))
    assert frames[0].shape == (expected, 128) and expected == 313 + 63


def test_a_short_tail_chunk_gives_no_patches(nano):
    n = 400000 + 80                                          # 25 s and 5 ms: the last chunk is 80 samples
    frames = nano.encode_audio(*_audio(n))[0]
    assert num_output_frames(num_mel_frames(80)) == 0 and len(frames) == num_output_frames(num_mel_frames(400000))
    assert audio_patch_counts(n) == [len(frames), 0]


def _reference(enc: AudioEncoder, ada: AudioAdapter, mel: torch.Tensor) -> torch.Tensor:
    """The encoder and adaptor of STEP_AUDIO2_FACTS.md for one clip [n_mels, T], written out longhand."""
    w = {k: v.double() for k, v in {**{f"encoder.{k}": v for k, v in enc.state_dict().items()},
                                    **{f"adapter.{k}": v for k, v in ada.state_dict().items()}}.items()}
    T, H = mel.shape[-1], enc.config.n_audio_head
    x = F.gelu(F.conv1d(mel[None].double(), w["encoder.conv1.weight"], w["encoder.conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, w["encoder.conv2.weight"], w["encoder.conv2.bias"], stride=2, padding=1))[0].T
    x = x + w["encoder.positional_embedding.weight"][:len(x)]
    # The public code's mask: T - 2 valid mel frames, sampled at the conv2 output rate.
    valid = torch.arange(T)[(T + 1) % 2::2] < T - 2
    bias = torch.where(valid, 0.0, -1e10).double()
    ln = lambda h, p: F.layer_norm(h, h.shape[-1:], w[p + ".weight"], w[p + ".bias"])      # noqa: E731
    for i in range(enc.config.n_audio_layer):
        p = f"encoder.blocks.{i}."
        h = ln(x, p + "attn_ln")
        q = h @ w[p + "attn.query.weight"].T + w[p + "attn.query.bias"]
        k = h @ w[p + "attn.key.weight"].T
        v = h @ w[p + "attn.value.weight"].T + w[p + "attn.value.bias"]
        heads = lambda t: t.view(len(t), H, -1).transpose(0, 1)                              # noqa: E731
        scale = (x.shape[-1] // H) ** -0.25
        att = torch.softmax((heads(q) * scale) @ (heads(k) * scale).transpose(1, 2) + bias, dim=-1)
        y = (att @ heads(v)).transpose(0, 1).reshape(len(x), -1)
        x = x + y @ w[p + "attn.out.weight"].T + w[p + "attn.out.bias"]
        h = F.gelu(ln(x, p + "mlp_ln") @ w[p + "mlp.0.weight"].T + w[p + "mlp.0.bias"])
        x = x + h @ w[p + "mlp.2.weight"].T + w[p + "mlp.2.bias"]
    x = ln(F.avg_pool1d(x.T[None], 2, 2)[0].T, "encoder.after_norm")
    x = F.gelu(F.conv1d(x.T[None], w["adapter.conv.weight"], w["adapter.conv.bias"], stride=2, padding=1))[0].T
    x = torch.relu(x @ w["adapter.linear1.weight"].T + w["adapter.linear1.bias"])
    x = x @ w["adapter.linear2.weight"].T + w["adapter.linear2.bias"]
    enc_frames = (T - 2 + 1) // 2 // 2
    return x[:(enc_frames - 1) // 2 + 1].float()


def test_encoder_and_adaptor_follow_the_facts():
    torch.manual_seed(1)
    cfg = EncoderConfig(n_audio_ctx=200, n_audio_state=32, n_audio_head=4, n_audio_layer=2, llm_dim=24,
                        adapter_hidden=48)
    enc, ada, front = AudioEncoder(cfg), AudioAdapter(cfg), LogMelFrontend()
    for n in (16000, 14567):                               # even and odd mel frame counts
        mel, mel_lengths = front(*_audio(n, seed=n))
        out, lengths = ada(*enc(mel, mel_lengths))
        ref = _reference(enc, ada, mel[0])
        torch.testing.assert_close(out[0, :int(lengths[0])], ref, atol=1e-4, rtol=1e-4)


def test_batch_rows_equal_lone_clips(nano):
    lengths = (16000, 9001, 12345, 4000)
    together = nano.encode_audio(*_audio(*lengths))
    for i, n in enumerate(lengths):
        x, _ = _audio(*lengths)
        alone = nano.encode_audio(x[i:i + 1, :n], torch.tensor([n]))[0]
        assert together[i].shape == alone.shape == (num_output_frames(num_mel_frames(n)), 128)
        torch.testing.assert_close(together[i], alone, atol=1e-5, rtol=1e-5)


def _ids_with_slots(counts: list[int], length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, length] random text ids with counts[b] <audio_patch> slots starting at position 3."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB - 1, (len(counts), length), generator=g)
    for b, c in enumerate(counts):
        ids[b, 3:3 + c] = PATCH
    return ids, ids == PATCH


def test_embed_puts_frames_in_the_patch_slots_in_order(nano):
    audio, lengths = _audio(16000, 8000)
    frames = nano.encode_audio(audio, lengths)
    ids, mask = _ids_with_slots([len(f) for f in frames], 24)
    with torch.no_grad():
        emb = nano.embed(ids, audio, lengths, mask)
        tok = nano.model.embed_tokens(ids)
    for b, f in enumerate(frames):
        torch.testing.assert_close(emb[b, mask[b]], f)
        assert torch.equal(emb[b, ~mask[b]], tok[b, ~mask[b]])
    bad_ids, bad_mask = _ids_with_slots([len(frames[0]) - 1, len(frames[1])], 24)
    with pytest.raises(ValueError, match=r"<audio_patch> count.*\(0, 12, 13\)"):
        nano.embed(bad_ids, audio, lengths, bad_mask)
    with pytest.raises(ValueError, match="no input_audio"):
        nano.embed(ids, None, None, mask)


def test_rows_may_hold_several_clips(nano):
    audio, lengths = _audio(16000, 7000)
    per_clip = nano.encode_audio(audio, lengths)
    stacked = nano.encode_audio(audio[None], lengths[None])          # one row holding both clips
    torch.testing.assert_close(stacked[0], torch.cat(per_clip), atol=1e-5, rtol=1e-5)


def _check_cached_equals_full(model, ids, mask, prefix, audio=None, lengths=None, slots=None):
    with torch.no_grad():
        full = model(ids, mask, audio, lengths, slots)
    logits, hidden, state = model.prefill(ids[:, :prefix], mask[:, :prefix], audio, lengths,
                                          None if slots is None else slots[:, :prefix])
    torch.testing.assert_close(hidden, full.hidden[:, :prefix], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits, full.logits[:, prefix - 1], atol=1e-4, rtol=1e-4)
    for t in range(prefix, ids.shape[1]):
        logits, hidden, state = model.step(ids[:, t:t + 1], state)
        torch.testing.assert_close(hidden, full.hidden[:, t], atol=1e-4, rtol=1e-4)
        if t + 1 < ids.shape[1]:
            torch.testing.assert_close(logits, full.logits[:, t], atol=1e-4, rtol=1e-4)
    assert state.attention_mask.shape == ids.shape and state.cache.get_seq_length() == ids.shape[1]
    return full


def test_cached_decoding_equals_full_forward(nano):
    ids = torch.randint(0, VOCAB - 1, (1, 20), generator=torch.Generator().manual_seed(3))
    full = _check_cached_equals_full(nano, ids, torch.ones_like(ids), prefix=8)
    torch.testing.assert_close(nano.lm_head(full.hidden), full.logits)
    # The hidden states are taken after the final RMSNorm: divided by its weight they have unit RMS.
    rms = (full.hidden / nano.model.norm.weight).pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)


def test_cached_decoding_with_an_audio_prefix(nano):
    audio, lengths = _audio(12000)
    n = num_output_frames(num_mel_frames(12000))
    ids, slots = _ids_with_slots([n], n + 16)
    _check_cached_equals_full(nano, ids, torch.ones_like(ids), prefix=n + 6, audio=audio, lengths=lengths,
                              slots=slots)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_decodes_like_each_row_alone(nano, side):
    audio, lengths = _audio(12000, 1)
    n = num_output_frames(num_mel_frames(12000))
    long_ids, _ = _ids_with_slots([n], n + 10, seed=5)
    short_ids = torch.randint(0, VOCAB - 1, (1, 7), generator=torch.Generator().manual_seed(6))
    L, steps = long_ids.shape[1], 4
    ids = torch.zeros(2, L, dtype=torch.long)
    mask = torch.zeros(2, L, dtype=torch.long)
    ids[0] = long_ids[0]
    mask[0] = 1
    span = slice(L - 7, L) if side == "left" else slice(0, 7)
    ids[1, span], mask[1, span] = short_ids[0], 1
    lengths[1] = 0                                                      # text-only row
    logits, _, state = nano.prefill(ids, mask, audio, lengths, ids == PATCH)
    g = torch.Generator().manual_seed(7)
    new = torch.randint(0, VOCAB - 1, (2, steps), generator=g)
    got = [logits]
    for t in range(steps):
        logits, hidden, state = nano.step(new[:, t:t + 1], state)
        got.append(logits)
    for b, row in enumerate((long_ids[0], short_ids[0])):
        seq = torch.cat([row, new[b]])[None]
        with torch.no_grad():
            alone = nano(seq, None, audio[:1] if b == 0 else None, lengths[:1] if b == 0 else None,
                         (seq == PATCH) if b == 0 else None)
        want = alone.logits[0, len(row) - 1:]
        torch.testing.assert_close(torch.stack([g_[b] for g_ in got]), want, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(hidden[b], alone.hidden[0, -1], atol=1e-4, rtol=1e-4)


def test_bad_configs_and_steps(nano):
    with pytest.raises(ValueError, match="llm_dim"):
        BackboneConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=10, max_position_embeddings=64)
    _, _, state = nano.prefill(torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"\[B=1, 1\]"):
        nano.step(torch.tensor([[1, 2]]), state)
