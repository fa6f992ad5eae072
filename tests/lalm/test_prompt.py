"""Inference prompts: the collator's sequences minus the answer; batches the backbone prefills."""
import numpy as np
import pytest
import torch

from a2llm.data.collate import SYSTEM_PROMPTS, FlameQACollator
from a2llm.lalm.backbone import BackboneConfig, StepAudio2Backbone
from a2llm.lalm.prompt import Audio, Message, PromptBuilder, Tokens
from a2llm.lalm.text_tokenizer import train_nano_tokenizer
from a2llm.lalm.tokens import TokenLayout, num_audio_patches
from tests.data.test_format import sample

N_CODES = 40


@pytest.fixture(scope="module")
def parts():
    texts = [f"question {i}?" for i in range(10)] + [f"answer {i}." for i in range(10)] + list(SYSTEM_PROMPTS.values())
    tok = train_nano_tokenizer(texts + ["hi", "hello"], N_CODES, vocab_size=150)
    layout = TokenLayout.from_tokenizer(tok, N_CODES)
    return tok, layout, PromptBuilder(tok, layout), FlameQACollator(tok, layout)


def _dialogue(s, task: str) -> list[Message]:
    msgs = [Message("system", SYSTEM_PROMPTS[task])]
    if task in ("aqaa", "tqa"):
        msgs += [Message(t.role, t.text) for t in s.context]
    question = Audio(s.question_audio, s.sample_rate) if task in ("aqaa", "asr") else s.question_text
    return msgs + [Message("human", question)]


@pytest.mark.parametrize("task,reply", [("aqaa", "speech"), ("tqa", "speech"), ("asr", "text")])
def test_prompt_is_the_collated_sequence_up_to_the_answer(parts, task, reply):
    tok, layout, builder, collator = parts
    s = sample(4)
    batch = collator([s], task)
    p = builder.build(_dialogue(s, task), reply=reply)
    n = len(p.input_ids)
    assert torch.equal(p.input_ids, batch.input_ids[0, :n])
    assert torch.equal(p.audio_patch_mask, batch.audio_patch_mask[0, :n])
    assert (p.input_ids[-1] == layout.tts_start) == (reply == "speech")
    # What follows in the collated row is the answer itself.
    rest = batch.input_ids[0, n:int(batch.attention_mask[0].sum())]
    assert layout.bot not in rest.tolist() and rest[-1] == layout.eot
    if task in ("aqaa", "asr"):
        assert len(p.audios) == 1 and np.array_equal(p.audios[0], s.question_audio)
        assert int(p.audio_patch_mask.sum()) == num_audio_patches(len(s.question_audio))
    else:
        assert not p.audios and not p.audio_patch_mask.any()


def test_long_audio_gets_one_block_per_25_s_chunk(parts):
    _, layout, builder, _ = parts
    p = builder.build([Message("human", [Audio(np.zeros(30 * 16000, np.float32)), "question 1?"])])
    ids = p.input_ids.tolist()
    assert ids.count(layout.audio_start) == ids.count(layout.audio_end) == 2
    assert int(p.audio_patch_mask.sum()) == num_audio_patches(400000) + num_audio_patches(80000)
    first_end = ids.index(layout.audio_end)
    assert ids[first_end + 1] == layout.audio_start               # the blocks follow each other


def test_batches_prefill_on_the_backbone(parts):
    tok, layout, builder, _ = parts
    torch.manual_seed(0)
    model = StepAudio2Backbone(BackboneConfig.nano(layout.vocab_size)).eval()
    rng = np.random.default_rng(0)
    speech = lambda n: Audio((0.1 * rng.standard_normal(n)).astype(np.float32))  # noqa: E731
    spoken = builder.build([Message("system", SYSTEM_PROMPTS["aqaa"]), Message("human", speech(12000)),
                            Message("assistant", [Tokens([layout.tts_start, layout.audio_id(3)]), "hello"]),
                            Message("user", [speech(5000), "hi"])])
    typed = builder.build([Message("human", "question 2?")], reply="text")
    batch = builder.collate([spoken, typed])
    assert batch.input_audio.shape[:2] == (2, 2) and batch.input_audio_lengths[1].tolist() == [0, 0]
    assert (batch.attention_mask[1, :len(spoken.input_ids) - len(typed.input_ids)] == 0).all()   # left padding
    logits, _, _ = model.prefill(**batch.as_kwargs())
    for b, p in enumerate((spoken, typed)):
        alone = builder.collate([p])
        ref, _, _ = model.prefill(**alone.as_kwargs())
        torch.testing.assert_close(logits[b], ref[0], atol=1e-4, rtol=1e-4)


def test_bad_messages(parts):
    _, _, builder, _ = parts
    with pytest.raises(ValueError, match="16000 Hz"):
        builder.build([Message("human", Audio(np.zeros(100, np.float32), 8000))])
    with pytest.raises(ValueError, match="role 'bot'"):
        builder.build([Message("bot", "hi")])
    with pytest.raises(TypeError, match="str, Audio or Tokens"):
        builder.build([Message("human", [3.0])])
    with pytest.raises(ValueError, match="reply"):
        builder.build([Message("human", "hi")], reply="song")
