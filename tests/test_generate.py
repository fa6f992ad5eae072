"""Batched greedy generation: batch = one by one, prompts never read the answer, motion on the right timeline."""
import numpy as np
import pytest

from a2llm.data import load_flame_qa
from a2llm.generate import Generator, normalise_text, question
from a2llm.model import A2LLM, load_checkpoint_tokenizer


@pytest.fixture(scope="module")
def gen(tiny_run):
    ckpt = tiny_run[2]
    return Generator(A2LLM.from_pretrained(ckpt), load_checkpoint_tokenizer(ckpt))


def test_a_batch_decodes_like_each_row_alone(gen, tiny_corpus):
    samples = [load_flame_qa(tiny_corpus, "test")[i] for i in range(3)]
    together = gen.answer(samples, "aqaa", max_new_tokens=12)
    for s, a in zip(samples, together):
        alone = gen.answer([s], "aqaa", max_new_tokens=12)[0]
        assert alone.tokens == a.tokens
        np.testing.assert_allclose(alone.motion, a.motion, atol=1e-5)
        assert len(a.motion) == len(a.audio_codes)


def test_reference_motion_has_the_reference_frames(gen, tiny_corpus):
    samples = [load_flame_qa(tiny_corpus, "test")[i] for i in range(2)]
    for m, s in zip(gen.motion_for_reference(samples), samples):
        assert m.shape == s.motion.shape and np.isfinite(m).all()


def test_typed_and_spoken_questions_need_no_reference(gen, tiny_corpus):
    s = load_flame_qa(tiny_corpus, "test")[0]
    typed, task = question(text="How was the concert?")
    assert task == "tqa" and len(gen.answer([typed], task, max_new_tokens=4)[0].tokens) == 4
    spoken, task = question(audio=s.question_audio)
    assert task == "aqaa" and gen.answer([spoken], task, max_new_tokens=3)[0].tokens
    with pytest.raises(ValueError, match="either"):
        question(text="hi", audio=s.question_audio)


def test_normalise_text():
    assert normalise_text("Haha, it was wonderful!  I loved it.") == "haha it was wonderful i loved it"


def test_forced_text_fills_the_text_slots_of_the_training_layout(gen, tiny_corpus):
    s = load_flame_qa(tiny_corpus, "test")[0]
    text = gen.tok.encode(s.response_text, add_special_tokens=False)
    a = gen.answer([s], "tts", max_new_tokens=len(text) * 5 + 40, with_motion=False, force_text=[text])[0]
    L = gen.layout
    placed = [t for t in a.tokens if not L.is_audio(t) and t not in (L.tts_end, L.eot)]
    assert placed == text
    # one text token, then four audio tokens, while text remains
    first = [("a" if L.is_audio(t) else "t") for t in a.tokens[:10]]
    assert first == list("taaaataaaa")


def test_forced_text_in_the_word_layout_follows_the_models_choice():
    import torch

    from a2llm.generate import TextSchedule
    from a2llm.lalm.text_tokenizer import train_nano_tokenizer
    from a2llm.lalm.tokens import TokenLayout

    tok = train_nano_tokenizer(["a b c"], 8, vocab_size=40)
    L = TokenLayout.from_tokenizer(tok, 8)
    sched = TextSchedule([5, 6], L, text_layout="word")

    def logits(prefer_text: bool):
        x = torch.full((L.vocab_size,), -10.0)
        x[L.audio_offset + 3] = 1.0
        x[7] = 2.0 if prefer_text else -10.0
        return x

    picks = [sched.choose(logits(p)) for p in (False, False, True, False, True, True)]
    # the first text token opens the answer; later ones come where the model would rather write than speak;
    # the forced ids are placed, not the model's own text choice (7); once the text is used up: audio only
    assert picks == [5, L.audio_offset + 3, 6, L.audio_offset + 3, L.audio_offset + 3, L.audio_offset + 3]


def test_the_word_layout_weighs_speaking_against_writing_by_probability_mass():
    import torch

    from a2llm.generate import TextSchedule, next_token
    from a2llm.lalm.text_tokenizer import train_nano_tokenizer
    from a2llm.lalm.tokens import TokenLayout

    tok = train_nano_tokenizer(["a b c"], 8, vocab_size=40)
    L = TokenLayout.from_tokenizer(tok, 8)
    x = torch.full((L.vocab_size,), -10.0)
    x[L.audio_offset + 2] = 1.0                   # the single best token is a speech code ...
    x[3:13] = 0.5                                 # ... but ten candidate words together are likelier
    assert int(x.argmax()) == L.audio_offset + 2
    sched = TextSchedule([20, 21], L, text_layout="word")
    assert sched.choose(x) == 20 and sched.choose(x) == 21     # writing is due: the forced ids go in
    assert next_token(x, L, "word") == 3                        # free: write, the best word
    assert next_token(x, L, "chunked") == L.audio_offset + 2    # chunked: the plain argmax
    x[3:13] = -10.0
    assert next_token(x, L, "word") == L.audio_offset + 2


def test_a_spoken_question_gets_the_silence_margin_nano_trained_with():
    from a2llm.generate import QUESTION_MARGIN_S, question

    clip = np.ones(8000, np.float32)
    s, task = question(audio=clip)
    pad = int(round(QUESTION_MARGIN_S * 16000))
    assert task == "aqaa" and len(s.question_audio) == len(clip) + 2 * pad
    assert not s.question_audio[:pad].any() and not s.question_audio[-pad:].any()
    np.testing.assert_array_equal(s.question_audio[pad:-pad], clip)
    assert len(question(audio=clip, margin_s=0)[0].question_audio) == len(clip)


def test_forced_text_holds_a_new_word_until_the_current_one_is_spoken():
    import torch

    from a2llm.generate import TextSchedule, WordPacing, word_start_mask
    from a2llm.lalm.text_tokenizer import train_nano_tokenizer
    from a2llm.lalm.tokens import TokenLayout

    tok = train_nano_tokenizer(["hello there", "hello world"], 8, vocab_size=60)
    mask = word_start_mask(tok)
    ids = tok.encode("hello world", add_special_tokens=False)
    assert mask[ids[0]] and all(mask[i] == tok.convert_ids_to_tokens(i).startswith("\u2581") for i in ids)

    L = TokenLayout.from_tokenizer(tok, 8)
    word_start = torch.zeros(len(tok), dtype=torch.bool)
    word_start[[20, 21]] = True                   # 20, 21 begin words; 22 continues one (a piece, punctuation)
    x = torch.full((L.vocab_size,), -10.0)
    x[L.audio_offset + 2] = 0.0
    x[20:23] = 1.0                                # the model would rather write, at every step
    sched = TextSchedule([20, 22, 21], L, text_layout="word", pacing=WordPacing(word_start, L))
    picks = [sched.choose(x) for _ in range(4)]
    # 20 opens; its continuation 22 may follow at once; the next word 21 waits for one frame of speech
    assert picks == [20, 22, L.audio_offset + 2, 21]
    x[21] = 3.0                                   # ... unless it is the very word the model wants to write
    sched = TextSchedule([20, 21], L, text_layout="word", pacing=WordPacing(word_start, L))
    assert [sched.choose(x) for _ in range(2)] == [20, 21]
