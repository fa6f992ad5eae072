"""The subtask collator: interleaved sequences, loss masks and motion targets on the audio-token steps."""
import dataclasses

import numpy as np
import pytest
import torch

from a2llm.data.collate import IGNORE, SYSTEM_PROMPTS, TASKS, CollatorConfig, FlameQACollator
from a2llm.lalm.text_tokenizer import train_nano_tokenizer
from a2llm.lalm.tokens import TokenLayout, audio_patch_counts
from tests.data.test_format import sample

N_CODES = 40


@pytest.fixture(scope="module")
def collator():
    texts = [f"question {i}?" for i in range(10)] + [f"answer {i}." for i in range(10)] + list(SYSTEM_PROMPTS.values())
    tok = train_nano_tokenizer(texts + ["hi", "hello"], N_CODES, vocab_size=150)
    return FlameQACollator(tok, TokenLayout.from_tokenizer(tok, N_CODES))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_yields_a_batch(collator, task):
    samples = [sample(0, frames=30), sample(1, frames=45)]
    b = collator(samples, task)
    L = collator.layout
    assert b.input_ids.shape == b.labels.shape == b.attention_mask.shape
    assert b.tasks == [task, task]
    for r, s in enumerate(samples):
        ids, labels = b.input_ids[r], b.labels[r]
        n = int(b.attention_mask[r].sum())
        assert (ids[n:] == L.pad).all() and (labels[n:] == IGNORE).all()
        trained = labels != IGNORE
        assert (labels[trained] == ids[trained]).all()
        # The loss starts inside the last assistant turn and ends with its <|EOT|>.
        first = int(trained.nonzero()[0])
        assert ids[n - 1] == L.eot and trained[n - 1]
        assert ids[first - 1] != L.eot and (ids[:first] == L.bot).sum() >= 2
        if task in ("aqaa", "asr", "repeat"):
            audio = s.question_audio if task != "repeat" else s.response_audio
            assert int(b.audio_patch_mask[r].sum()) == sum(audio_patch_counts(len(audio)))
            assert int(b.input_audio_lengths[r]) == len(audio)
            assert not trained[b.audio_patch_mask[r]].any()
        else:
            assert not b.audio_patch_mask[r].any() and b.input_audio_lengths[r] == 0
        if task == "asr":
            assert b.motion_lengths[r] == 0 and not L.is_audio(ids[trained]).any()
            continue
        T = len(s.motion)
        pos = b.audio_token_positions[r]
        assert int(b.motion_lengths[r]) == T and (pos[:T] >= 0).all() and (pos[T:] == -1).all()
        np.testing.assert_array_equal((ids[pos[:T]] - L.audio_offset).numpy(), s.audio_tokens)
        assert torch.equal(b.motion[r, :T], torch.from_numpy(s.motion))
        assert L.is_audio(ids).sum() == T                     # every audio token has its motion frame
        assert ids[first] == L.tts_start and (ids == L.tts_end).sum() == 1


def test_text_leads_the_speech(collator):
    s = sample(3, frames=40)
    b = collator([s], "tqa")
    ids = b.input_ids[0].tolist()
    L = collator.layout
    start = ids.index(L.tts_start)
    body = ids[start + 1:ids.index(L.tts_end)]
    text_ids = collator.tok.encode(s.response_text, add_special_tokens=False)
    is_audio = [L.audio_offset <= i < L.audio_offset + N_CODES for i in body]
    # 1 text : 4 audio while text lasts, then audio alone.
    assert body[0] == text_ids[0] and is_audio[1:5] == [True] * 4 and body[5] == text_ids[1]
    assert [i for i, a in zip(body, is_audio) if not a] == text_ids


def test_context_turns_included(collator):
    s = sample(0)
    with_ctx = collator([s], "aqaa").input_ids[0]
    no_ctx = FlameQACollator(collator.tok, collator.layout, CollatorConfig(use_context=False))([s], "aqaa").input_ids[0]
    assert (with_ctx == collator.layout.bot).sum() == (no_ctx == collator.layout.bot).sum() + 2


def test_mixed_tasks_and_errors(collator):
    b = collator([sample(0), sample(1), sample(2)])           # tasks sampled
    assert len(b.tasks) == 3 and set(b.tasks) <= set(TASKS)
    s = sample(0)
    s.audio_tokens = None
    with pytest.raises(ValueError, match="audio_tokens"):
        collator([s], "tts")
    with pytest.raises(ValueError, match="unknown task"):
        collator([sample(0)], "dance")
    s = sample(0)
    s.sample_rate = 22050
    with pytest.raises(ValueError, match="16000 Hz"):
        collator([s], "aqaa")


def test_word_layout_puts_each_words_text_right_before_its_first_frame(collator):
    s = sample(4, frames=40)
    s.response_text = "answer 4. hello hi"
    s.meta = {"answer_words": [[0, 6, 0], [7, 9, 12], [10, 15, 20], [16, 18, 33]]}    # "answer", "4.", ...
    word = FlameQACollator(collator.tok, collator.layout, CollatorConfig(text_layout="word"))
    ids = word([s], "tts").input_ids[0].tolist()
    L = collator.layout
    body = ids[ids.index(L.tts_start) + 1:ids.index(L.tts_end)]
    text = collator.tok(s.response_text, add_special_tokens=False, return_offsets_mapping=True)
    frame, before = 0, {}
    for t in body:
        if L.is_audio(t):
            frame += 1
        else:
            before.setdefault(frame, []).append(t)
    assert [t for f in sorted(before) for t in before[f]] == text["input_ids"]
    # each piece belongs to the word its first visible character is in (a piece's span may start at the space
    # before its word: placed by that, the text would run a word ahead of the speech)
    owner = [max(k for k, (c0, _, _) in enumerate(s.meta["answer_words"])
                 if c0 <= a + len(s.response_text[a:b]) - len(s.response_text[a:b].lstrip()))
             for a, b in text["offset_mapping"]]
    expect = {}
    for t, w in zip(text["input_ids"], owner):
        expect.setdefault(s.meta["answer_words"][w][2], []).append(t)
    assert before == expect and frame == 40
    assert collator.tok.decode(before[20]).strip() == "hello" and collator.tok.decode(before[33]).strip() == "hi"
    chunked = collator([s], "tts").input_ids[0].tolist()        # the same sample in the default layout differs
    assert sorted(chunked) == sorted(ids) and chunked != ids
    s.meta = {}
    with pytest.raises(ValueError, match="answer_words"):
        word([s], "tts")
    with pytest.raises(ValueError, match="text_layout"):
        CollatorConfig(text_layout="diagonal")


# --------------------------------------------------------------------------- Step-Audio-2's "ta4" layout
@pytest.fixture(scope="module")
def step_audio2_tok(tmp_path_factory):
    from a2llm.lalm.text_tokenizer import load_text_tokenizer
    from tests.lalm.fixture import write_tokenizer

    folder = tmp_path_factory.mktemp("sa2-tok")
    write_tokenizer(folder)
    return load_text_tokenizer(folder)


def _answer(text: str, codes: list[int]):
    s = sample(5, frames=len(codes))
    s.response_text, s.audio_tokens = text, np.array(codes)
    return s


def test_ta4_interleave_follows_the_public_builder_written_out_by_hand():
    from a2llm.lalm.tokens import STEP_AUDIO2_LAYOUT as L, ta4_interleave

    P, X = L.tts_pad, L.audio_pad
    a = [L.audio_id(k) for k in range(13)]
    t = [10, 11, 12, 13, 14]
    # speech outlasts the text: <tts_pad> in the later text slots, a short last chunk, no audio pad
    assert ta4_interleave(t[:2], a[:9], L) == [10, *a[0:4], 11, *a[4:8], P, a[8]]
    assert ta4_interleave(t[:2], a[:8], L) == [10, *a[0:4], 11, *a[4:8]]
    # text outlasts ceil(A/4) chunks but not A tokens: the chunks after the speech carry text alone
    assert ta4_interleave(t[:3], a[:5], L) == [10, *a[0:4], 11, a[4], 12]
    # text outlasts every audio token: N - A audio pads, then text alone
    assert ta4_interleave(t[:4], a[:2], L) == [10, a[0], a[1], X, X, 11, 12, 13]
    assert ta4_interleave([], a[:3], L) == [P, *a[0:3]]
    nano = dataclasses.replace(L, audio_pad=None)
    with pytest.raises(ValueError, match="audio pad"):
        ta4_interleave(t[:4], a[:2], nano)


def test_a_step_audio2_tts_sample_is_the_ta4_layout_token_by_token(step_audio2_tok):
    from a2llm.generate import layout_for

    tok = step_audio2_tok
    L = layout_for(tok)
    assert L.num_audio_codes == 6561 and L.audio_pad == 158257 and not L.is_audio(L.audio_pad)
    col = FlameQACollator(tok, L)                      # the default config ("chunked") resolves to ta4
    assert col.text_layout == "ta4"
    H, i, e, l_, o = (tok.convert_tokens_to_ids(c) for c in "Hielo")
    P, X, A = L.tts_pad, L.audio_pad, [L.audio_id(k) for k in range(13)]
    prompt = ([L.bot] + tok.encode("system\n") + tok.encode(SYSTEM_PROMPTS["tts"]) + [L.eot]
              + [L.bot] + tok.encode("human\n"))
    head = [L.bot] + tok.encode("assistant\n") + [L.tts_start]

    s = _answer("Hi", list(range(13)))
    b = col([s], "tts")
    body = [H, A[0], A[1], A[2], A[3], i, A[4], A[5], A[6], A[7], P, A[8], A[9], A[10], A[11], P, A[12]]
    expect = prompt + [H, i, L.eot] + head + body + [L.tts_end, L.eot]
    assert b.input_ids[0].tolist() == expect
    start = len(prompt) + 3 + len(head) - 1            # <tts_start>: the first trained token
    assert (b.labels[0, :start] == IGNORE).all() and b.labels[0, start:].tolist() == expect[start:]
    positions = [start + 1 + k for k, t in enumerate(body) if t in A]
    assert b.audio_token_positions[0].tolist() == positions and int(b.motion_lengths[0]) == 13

    s = _answer("Hello", [5, 6])                       # text outlasts the speech: <audio_6561> pads, no motion
    b = col([s], "tts")
    body = [H, A[5], A[6], X, X, e, X, l_, l_, o]
    expect = prompt + [H, e, l_, l_, o, L.eot] + head + body + [L.tts_end, L.eot]
    assert b.input_ids[0].tolist() == expect
    start = len(prompt) + 6 + len(head) - 1
    assert b.labels[0, start:].tolist() == expect[start:]
    assert b.audio_token_positions[0].tolist() == [start + 2, start + 3] and int(b.motion_lengths[0]) == 2
    assert int(L.is_audio(b.input_ids[0]).sum()) == 2      # the pads are not audio codes


def test_text_layouts_resolve_per_vocabulary(collator, step_audio2_tok):
    from a2llm.data.collate import resolve_text_layout
    from a2llm.generate import layout_for

    sa2 = layout_for(step_audio2_tok)
    assert resolve_text_layout("chunked", sa2) == resolve_text_layout("ta4", sa2) == "ta4"
    with pytest.raises(ValueError, match="ta4"):
        FlameQACollator(step_audio2_tok, sa2, CollatorConfig(text_layout="word"))
    # nano keeps what it asks for; ta4 works on its vocabulary as long as no audio pad is needed
    assert resolve_text_layout("word", collator.layout) == "word"
    assert FlameQACollator(collator.tok, collator.layout).text_layout == "chunked"
    ta4 = FlameQACollator(collator.tok, collator.layout, CollatorConfig(text_layout="ta4"))
    s = sample(3, frames=40)
    ids = ta4([s], "tts").input_ids[0].tolist()
    L = collator.layout
    body = ids[ids.index(L.tts_start) + 1:ids.index(L.tts_end)]
    kinds = "".join("a" if L.is_audio(t) else ("p" if t == L.tts_pad else "t") for t in body)
    n_text = len(collator.tok.encode(s.response_text, add_special_tokens=False))
    assert kinds == ("taaaa" * n_text + "paaaa" * 10)[:len(kinds)] and kinds.count("a") == 40
