"""The read-aloud corpus: random sentences of a general vocabulary, spoken twice, resumable."""
import numpy as np

from a2llm.data.format import load_flame_qa
from a2llm.data.nano.read import generate_read, make_read_sample, read_sentence, read_vocabulary
from a2llm.data.nano.templates import TEMPLATES


def test_vocabulary_holds_every_training_template_word_and_common_words():
    vocab = set(read_vocabulary())
    for t in TEMPLATES:
        if not t.holdout:
            for word in t.answer.format(t="the concert").lower().replace(",", " ").split():
                assert word.strip(".!?") in vocab, word
    assert {"water", "tomorrow", "seven"} <= vocab and len(vocab) > 500


def test_sentences_are_random_word_sequences_with_a_capital_and_a_final_mark():
    vocab = read_vocabulary()
    rng = np.random.default_rng(0)
    sentences = [read_sentence(rng, vocab) for _ in range(200)]
    assert len(set(sentences)) == 200
    for s in sentences:
        assert s[0].isupper() and s[-1] in ".!?"
        assert 3 <= len(s.split()) <= 10
    assert read_sentence(np.random.default_rng(5), vocab) == read_sentence(np.random.default_rng(5), vocab)


def test_a_sample_says_its_sentence_in_two_voices_with_one_token_and_motion_frame_per_40_ms():
    s = make_read_sample(3)
    assert s.id == "read-000003" and s.split == "train"
    assert s.question_text == s.response_text
    assert s.meta["question_voice"] != s.meta["answer_voice"]
    frames = int(round(25 * len(s.response_audio) / 16000))
    assert len(s.audio_tokens) == frames == s.motion.shape[0] and s.motion.shape[1] == 58
    assert len(set(s.audio_tokens.tolist())) > 5                # phones, not one silence token
    assert make_read_sample(3).response_text == s.response_text


def test_generation_continues_a_partial_folder(tmp_path):
    generate_read(tmp_path, 3, workers=1, progress=False)
    generate_read(tmp_path, 5, workers=1, progress=False)
    ds = load_flame_qa(tmp_path, "train")
    assert len(ds) == 5
    assert sorted(ds.record(i)["id"] for i in range(5)) == [f"read-{i:06d}" for i in range(5)]
    assert ds.record(4)["response_text"] == make_read_sample(4).response_text


def test_sentences_mix_the_core_and_the_general_vocabulary():
    from a2llm.data.nano.read import general_vocabulary

    general, core = general_vocabulary(), set(read_vocabulary())
    assert len(general) == 5000 and len(set(general)) == 5000 and general[:3] == ("the", "to", "and")
    assert all(w.isalpha() and w.islower() for w in general)
    rng = np.random.default_rng(1)
    words = [w.strip(",.!?").lower() for _ in range(300)
             for w in read_sentence(rng, read_vocabulary(), general=general).split()]
    outside = [w for w in words if w not in core]
    assert all(w in set(general) for w in outside)
    assert 0.2 < len(outside) / len(words) < 0.6       # half the draws are general, many of those also core
