"""Pronunciation-aware text embeddings: the lexicon from espeak-ng, the embedding, the backbone and save/load."""
import pytest
import torch

from a2llm.data.phones import PHONES, phone_class
from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone
from a2llm.lalm.lexicon import LexiconEmbedding, build_lexicon, piece_phones
from a2llm.lalm.text_tokenizer import train_nano_tokenizer
from a2llm.lalm.tokens import TokenLayout


def test_piece_phones_are_espeak_classes_without_silence():
    assert piece_phones("party") == [phone_class(p) for p in ("p", "A@", "t", "i:")]
    assert piece_phones(",") == [] and piece_phones("  ") == []
    assert piece_phones("party!") == piece_phones("party")


def test_zero_lexicon_is_a_plain_embedding_and_phones_add_per_position():
    torch.manual_seed(0)
    emb = LexiconEmbedding(10, 8, max_phones=3)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(emb(ids), emb.weight[ids])
    table = torch.zeros(10, 3, dtype=torch.long)
    table[2] = torch.tensor([5, 7, 0])            # token 2: phone classes 4 then 6
    table[3] = torch.tensor([7, 5, 0])            # token 3: the same phones, the other order
    emb.set_lexicon(table)
    out = emb(ids)
    assert torch.equal(out[0, 0], emb.weight[1])
    assert torch.allclose(out[0, 1], emb.weight[2] + emb.phones[0, 5] + emb.phones[1, 7])
    # the order of the phones matters: same phones, other positions, other vector
    assert not torch.allclose(out[0, 2] - emb.weight[3], out[0, 1] - emb.weight[2])


def test_set_lexicon_refuses_tables_that_do_not_fit():
    emb = LexiconEmbedding(10, 8, max_phones=3)
    with pytest.raises(ValueError, match="does not fit"):
        emb.set_lexicon(torch.zeros(10, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 52\]"):
        emb.set_lexicon(torch.full((10, 3), len(PHONES) + 1, dtype=torch.long))
    assert int(emb.lexicon.abs().sum()) == 0      # nothing changed
    with pytest.raises(ValueError, match="max_phones"):
        LexiconEmbedding(10, 8, max_phones=0)


@pytest.fixture(scope="module")
def tok():
    texts = ["the party was fun", "the museum was so much fun", "hello there"] * 5
    return train_nano_tokenizer(texts, len(PHONES), vocab_size=160)


def test_build_lexicon_covers_words_not_specials_or_audio(tok):
    layout = TokenLayout.from_tokenizer(tok, len(PHONES))
    table = build_lexicon(tok, layout.vocab_size, max_phones=6)
    assert table.shape == (layout.vocab_size, 6)
    party = tok.encode("party", add_special_tokens=False)
    assert len(party) == 1
    assert table[party[0]].tolist()[:4] == [c + 1 for c in piece_phones("party")]
    for special in (layout.bot, layout.tts_start, layout.audio_offset, layout.audio_offset + 5):
        assert int(table[special].abs().sum()) == 0


def test_backbone_with_lexicon_saves_and_loads_it(tok, tmp_path):
    from a2llm.model import A2LLM, A2LLMConfig

    layout = TokenLayout.from_tokenizer(tok, len(PHONES))
    cfg = A2LLMConfig.nano(layout.vocab_size)
    bb = BackboneConfig(**{**cfg.backbone.__dict__, "lexicon_phones": 6})
    model = A2LLM(A2LLMConfig(name="t", backbone=bb, connector=cfg.connector, lora=cfg.lora))
    plain = StepAudio2Backbone(cfg.backbone)
    assert isinstance(model.backbone.model.embed_tokens, LexiconEmbedding)
    assert not isinstance(plain.model.embed_tokens, LexiconEmbedding)
    # Qwen2's initialisation is kept (std 0.02), not nn.Embedding's N(0, 1)
    assert float(model.backbone.model.embed_tokens.weight.std()) < 0.1
    model.backbone.model.embed_tokens.set_lexicon(build_lexicon(tok, layout.vocab_size, 6))
    model.save_pretrained(tmp_path / "ck")
    back = A2LLM.from_pretrained(tmp_path / "ck")
    assert back.config.backbone.lexicon_phones == 6
    a, b = model.backbone.model.embed_tokens, back.backbone.model.embed_tokens
    assert torch.equal(a.lexicon, b.lexicon) and int(b.lexicon.gt(0).sum()) > 0
    ids = torch.tensor([tok.encode("the party was fun", add_special_tokens=False)])
    assert torch.allclose(a(ids), b(ids))


def test_batch_and_single_token_paths_agree():
    torch.manual_seed(1)
    emb = LexiconEmbedding(12, 8, max_phones=4)
    emb.set_lexicon(torch.randint(0, len(PHONES) + 1, (12, 4)))
    ids = torch.randint(0, 12, (3, 10))                     # 30 ids >= 12 rows: the whole-table path
    whole = emb(ids)
    one_by_one = torch.stack([torch.cat([emb(ids[b, t:t + 1]) for t in range(10)]) for b in range(3)])
    assert torch.allclose(whole, one_by_one, atol=1e-6)
