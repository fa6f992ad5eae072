"""The world of FLAME-QA-nano: wordings, topics and vocabulary held out, answers a function of the question (and of
the turn before for follow-ups), honest fallbacks off-domain, coherent dialogues of 1..12 turns."""
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from a2llm.data.format import EMOTIONS
from a2llm.data.nano import world as W
from a2llm.data.nano.motion import find_cues
from a2llm.data.nano.templates import HELD_OUT_TOPICS, TEMPLATES, TOPICS, TRAIN_TOPICS

ORIGINAL_TOPICS = ("the concert", "your trip", "the movie", "the party", "the game", "your weekend", "the dinner",
                   "the book", "the new job", "the exam", "the garden", "the museum")
FALLBACK_TEXTS = {a for a, _ in W.FALLBACKS.values()}


def dialogues(n, holdout=None, seed=0):
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        out.append(W.draw_dialogue(rng, W.draw_num_turns(rng), holdout))
    return out


@pytest.fixture(scope="module")
def train():
    return dialogues(2000)


@pytest.fixture(scope="module")
def test_sets():
    return {h: dialogues(300, h, seed=1) for h in W.HOLDOUTS}


def contains(text, phrase):
    return re.search(rf"(?<![a-z']){re.escape(phrase.lower())}(?![a-z'])", text.lower()) is not None


def test_every_intent_has_eight_wordings_and_a_third_of_them_held_out():
    kinds = Counter(i.kind for i in W.INTENTS.values())
    assert kinds["template"] == 36 and all(kinds[k] >= 5 for k in W.KINDS)
    for intent in W.INTENTS.values():
        n = len(intent.wordings)
        assert n >= W.MIN_WORDINGS, intent.id
        assert len(intent.held_wordings) == round(n / 3) and 0 not in intent.held_wordings, intent.id
    for t in TEMPLATES:                                        # the template's own question is its first wording
        intent = W.INTENTS[t.id]
        assert intent.wordings[0] == t.question and intent.held == t.holdout and intent.emotion == t.emotion
    # Deterministic: rebuilding the world picks the same held-out wordings and vocabulary.
    assert {k: i.held_wordings for k, i in W._build_intents().items()} == \
        {k: i.held_wordings for k, i in W.INTENTS.items()}
    assert W._build_held_vocabulary() == W.HELD_OUT_VOCABULARY


def test_topics_and_vocabulary_hold_parts_out():
    assert len(TOPICS) >= 30 and len(set(TOPICS)) == len(TOPICS) and TOPICS[:12] == ORIGINAL_TOPICS
    assert 1 <= len(HELD_OUT_TOPICS) < len(TOPICS) and set(HELD_OUT_TOPICS) < set(TOPICS) - set(ORIGINAL_TOPICS)
    assert set(TRAIN_TOPICS) | set(HELD_OUT_TOPICS) == set(TOPICS)
    for name, items in W.VOCABULARY.items():
        held = W.HELD_OUT_VOCABULARY[name]
        assert len(items) >= 10 and len(held) == round(len(items) / 3) and held < set(items), name
    for k in ("offdomain-arithmetic", "offdomain-request"):
        assert W.INTENTS[k].held_wordings


def test_wordings_never_coincide_across_intents():
    owner = {}
    for intent in W.INTENTS.values():
        for w in intent.wordings:
            q = W.normalise(w.replace("{t}", "the concert"))
            assert owner.setdefault(q, intent.id) == intent.id, (q, owner[q], intent.id)
    # Off-domain frames name no topic, and no topic holds an off-domain vocabulary item.
    for intent in W.BY_KIND["offdomain"]:
        assert not any(contains(w, t) for w in intent.wordings for t in TOPICS)
    assert not any(contains(t, x) for xs in W.VOCABULARY.values() for x in xs for t in TOPICS)


def test_training_dialogues_use_only_seen_wordings_topics_templates_and_vocabulary(train):
    turns = [t for d in train for t in d]
    assert all(not t.held_out for t in turns)
    for t in turns:
        intent = W.INTENTS[t.intent]
        assert t.wording not in intent.held_wordings and not intent.held, t
        assert t.topic is None or t.topic in TRAIN_TOPICS, t
        assert all(v not in W.HELD_OUT_VOCABULARY[W._vocabulary_of(s)] for s, v in t.slots), t
    # ... and as text: no held-out topic or vocabulary item occurs anywhere, no held-out wording is asked.
    text = "\n".join(x for t in turns for x in (t.question, t.answer))
    for phrase in list(HELD_OUT_TOPICS) + [v for vs in W.HELD_OUT_VOCABULARY.values() for v in vs]:
        assert not contains(text, phrase), phrase
    held_questions = {W.render(i, w, topic) for i in W.INTENTS.values() if i.kind != "offdomain"
                      for w in i.held_wordings for topic in (TOPICS if i.has_topic else (None,))}
    assert not held_questions & {t.question for t in turns}
    # Every seen intent and every kind comes up.
    assert {t.intent for t in turns} == {i.id for i in W.INTENTS.values() if not i.held}
    kinds = Counter(t.kind for t in turns)
    assert all(kinds[k] > 200 for k in W.KINDS)


def test_the_same_question_always_gets_the_same_answer(train, test_sets):
    answers = defaultdict(set)
    for d in train + [d for ds in test_sets.values() for d in ds]:
        for t in d:
            if t.kind != "followup":
                answers[t.question].add((t.answer, t.emotion))
    assert all(len(a) == 1 for a in answers.values()), [q for q, a in answers.items() if len(a) > 1][:3]
    assert sum(1 for d in train for t in d) > 2 * len(answers) / 3     # questions do repeat: the check has teeth


def test_follow_ups_answer_from_the_turn_before():
    how = W.INTENTS["happy-0"]
    _, _, _, anchor = W.respond(how, "the concert")
    answer, emotion, template, moved = W.respond("followup-what-about", "the movie", anchor)
    assert answer == TEMPLATES[6].fill("the movie")[1] == "Haha, it was wonderful! I loved every minute of the movie."
    assert (emotion, template, moved.topic) == ("happy", "happy-0", "the movie")
    sad = W.respond("sad-1", "the exam")[3]
    assert W.respond("followup-why", None, sad)[0] == "Sadly, the exam meant a lot to me, and it did not go as planned."
    assert W.respond("followup-why", None, sad)[0] != W.respond("followup-why", None, anchor)[0]
    assert W.respond("followup-really", None, sad)[:2] == (W.CONFIRM["sad"], "sad")
    tired, excited = W.respond("feeling-tired")[3], W.respond("feeling-excited")[3]
    assert W.respond("followup-and-you", None, tired)[0] != W.respond("followup-and-you", None, excited)[0]
    for key in ("why", "really", "more", "and-you"):          # nothing said yet: a clarification
        assert W.respond(f"followup-{key}")[0] == "Sorry, what do you mean?"
    assert W.respond("followup-what-about", "the movie")[0] == "Sorry, what would you like to know about the movie?"


def test_drawn_follow_ups_refer_to_the_previous_turn(train):
    checked = Counter()
    for d in train:
        for prev, t in zip((None,) + d[:-1], d):
            anchor = prev.anchor if prev else None
            assert (t.answer, t.emotion) == W.respond(t.intent, t.topic, anchor)[:2]
            if t.intent == "followup-what-about" and anchor and anchor.kind == "template":
                tpl = W.TEMPLATE_BY_ID[anchor.template]
                assert t.answer == tpl.fill(t.topic)[1] and t.template == tpl.id and t.topic != anchor.topic
                checked["what-about"] += 1
            if t.kind == "followup" and t.intent != "followup-what-about" and anchor and anchor.kind == "template":
                assert t.topic == anchor.topic
                checked["topic kept"] += 1
            if prev is None and t.kind == "followup":
                assert t.answer.startswith("Sorry, what")
                checked["clarify"] += 1
    assert min(checked.values()) >= 20 and len(checked) == 3
    why = {t.answer for d in train for t in d if t.question == "Why?"}
    assert len(why) > 10                # one wording, many answers: it depends on the turn before


def test_off_domain_questions_get_an_honest_fallback_never_an_in_domain_answer(train, test_sets):
    assert 2 <= len(W.FALLBACKS) <= 4 and {e for _, e in W.FALLBACKS.values()} <= {"neutral", "sad"}
    in_domain = {W.normalise(t.fill(topic)[1]) for t in TEMPLATES for topic in TOPICS}
    in_domain |= {W.normalise(i.answer) for i in W.INTENTS.values() if i.kind in ("opener", "feeling")}
    assert not {W.normalise(a) for a in FALLBACK_TEXTS} & in_domain
    off = [t for d in train + test_sets["offdomain"] for t in d if t.kind == "offdomain"]
    assert len(off) > 300
    for t in off:
        assert t.answer in FALLBACK_TEXTS and t.emotion in ("neutral", "sad") and t.template is None
        assert W.FALLBACKS[W.INTENTS[t.intent].fallback][0] == t.answer   # chosen by the frame type
    assert len({t.answer for t in off}) == len(W.FALLBACKS)
    held = [d[-1] for d in test_sets["offdomain"]]
    assert {p for t in held for p in t.held_out} == {"frame", "vocabulary"}
    for t in held:
        if t.held_out == ("vocabulary",):
            assert any(v in W.HELD_OUT_VOCABULARY[W._vocabulary_of(s)] for s, v in t.slots)
        else:
            assert t.wording in W.INTENTS[t.intent].held_wordings


def test_test_dialogues_hold_out_one_part_in_their_last_turn(test_sets):
    held_templates = {t.id for t in TEMPLATES if t.holdout}
    for holdout, ds in test_sets.items():
        for d in ds:
            last = d[-1]
            assert all(not t.held_out for t in d[:-1])
            if holdout == "voice":
                assert not last.held_out
            elif holdout == "template":
                assert last.held_out == ("template",) and last.template in held_templates
            elif holdout == "wording":
                assert last.held_out == ("wording",) and last.wording in W.INTENTS[last.intent].held_wordings
                assert last.template not in held_templates and last.topic in (None,) + TRAIN_TOPICS
            elif holdout == "topic":
                assert last.held_out == ("topic",) and last.topic in HELD_OUT_TOPICS
                assert last.answer == W.TEMPLATE_BY_ID[last.template].fill(last.topic)[1]
    kinds = Counter(d[-1].kind for d in test_sets["wording"])
    assert {"template", "opener", "feeling", "followup"} <= set(kinds)
    assert sum(d[-1].intent == "followup-what-about" for d in test_sets["topic"]) > 10


def test_the_inventory_holds_every_answer_and_nothing_garbled(train, test_sets):
    inv = W.answer_inventory()
    drawn = {t.answer for d in train + [d for ds in test_sets.values() for d in ds] for t in d}
    assert drawn <= inv and len(drawn) > 0.5 * len(inv)
    assert W.is_inventory_answer("haha it was WONDERFUL   I loved every minute of the concert")
    assert W.is_inventory_answer(W.IDENTITY.upper())
    assert not W.is_inventory_answer("Haha, it was wonderful! I loved every minute of the moon.")
    assert not W.is_inventory_answer("Haha, it was wonderful! I loved every minute of the concert was cancelled.")
    assert not W.is_inventory_answer("Paris is the capital of France.")


def test_normalise_matches_the_generators_answer_comparison():
    from a2llm.generate import normalise_text

    for text in list(W.answer_inventory())[:50] + ["  Hello,  WORLD!! ²x "]:
        assert W.normalise(text) == normalise_text(text)
    # the nano tokenizer folds compatibility forms (NFKC): the model writes "A2" for the identity's "A²"
    assert W.is_inventory_answer(W.IDENTITY.replace("²", "2")) and W.normalise("A²") == W.normalise("a2")


def test_dialogue_lengths_cover_one_to_twelve_turns():
    rng = np.random.default_rng(0)
    n = Counter(W.draw_num_turns(rng) for _ in range(3000))
    assert set(n) == set(range(1, 13))
    assert 0.26 < n[1] / 3000 < 0.34
    assert W.draw_num_turns(rng, max_turns=1) == 1
    d = W.draw_dialogue(np.random.default_rng(1), 12)
    assert len(d) == 12
    with pytest.raises(ValueError, match="holdout"):
        W.draw_dialogue(rng, 3, "accent")


def test_deterministic_for_a_seed():
    a = W.draw_dialogue(np.random.default_rng(7), 9, "topic")
    b = W.draw_dialogue(np.random.default_rng(7), 9, "topic")
    assert a == b
    assert a != W.draw_dialogue(np.random.default_rng(8), 9, "topic")


def test_answers_carry_emotions_and_cue_words_that_fit():
    def cues(text, emotion):
        words = [(w, k * 0.3, k * 0.3 + 0.3) for k, w in enumerate(text.split())]
        return {c.cue for c in find_cues(words, emotion)}

    assert {i.emotion for i in W.INTENTS.values() if i.emotion} <= set(EMOTIONS)
    for intent in W.BY_KIND["feeling"]:
        if intent.emotion == "sad":                            # empathy: a sad face and a "sorry" peak
            assert "sorry" in cues(intent.answer, "sad"), intent.id
        if intent.valence > 0:
            assert intent.emotion == "happy", intent.id
    assert "laugh" in cues(W.INTENTS["opener-laughter"].answer, "happy")
    for answer, emotion in W.FALLBACKS.values():
        assert cues(answer, emotion) <= {"sorry"}
    for e in EMOTIONS:
        assert W.WHY[e] and W.MORE[e] and W.CONFIRM[e]


def test_test_dialogues_hold_out_material_at_any_turn_and_keep_answers_consistent():
    from a2llm.data.nano.world import draw_test_dialogue, is_fallback, is_inventory_answer

    rng = np.random.default_rng(5)
    held_positions = set()
    for _ in range(40):
        d = draw_test_dialogue(rng, 12)
        assert len(d) == 12
        for k, t in enumerate(d):
            assert is_inventory_answer(t.answer)
            if t.held_out:
                held_positions.add(k)
            if t.kind == "offdomain":
                assert is_fallback(t.answer)
            elif t.kind == "template":
                assert not is_fallback(t.answer)
    assert held_positions == set(range(12))
    assert all(not t.held_out for t in draw_test_dialogue(np.random.default_rng(1), 12, held_share=0.0))
