"""Templated question/answer pairs of FLAME-QA-nano, six emotions, with wording that carries the emotion.

Each template pairs a question with the one answer the avatar gives to it (the answer is a function of
the question, so answer accuracy can be measured) and fills one topic slot in both. Templates whose
``holdout`` flag is set appear only in the test split (held-out templates); the rest appear in every
split (the test split also holds seen templates spoken by held-out voices). Each template is one intent of the
corpus's world (a2llm/data/nano/world.py), which adds its paraphrases, the other kinds of turns and dialogues.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    id: str
    emotion: str
    question: str
    answer: str
    holdout: bool = False

    def fill(self, topic: str) -> tuple[str, str]:
        """(question, answer) with the topic filled in and every sentence capitalised."""
        return _capitalise(self.question.format(t=topic)), _capitalise(self.answer.format(t=topic))


def _capitalise(text: str) -> str:
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


#: Topics filling the templates' slot: the corpus's first twelve, then events and outings that read well in
#: every template and wording (a2llm/data/nano/world.py). The HELD_OUT_TOPICS appear only in the test split.
TOPICS = ("the concert", "your trip", "the movie", "the party", "the game", "your weekend", "the dinner",
          "the book", "the new job", "the exam", "the garden", "the museum",
          "the wedding", "the festival", "the match", "the play", "the picnic", "the lecture", "the meeting",
          "the tour", "the race", "the conference", "the workshop", "the fair", "the parade", "the opera",
          "the exhibition", "the show", "the ballet", "the quiz night", "the boat trip", "the barbecue",
          "the birthday party", "the talent show")
HELD_OUT_TOPICS = ("the wedding", "the picnic", "the parade", "the opera", "the quiz night", "the boat trip")
TRAIN_TOPICS = tuple(t for t in TOPICS if t not in HELD_OUT_TOPICS)

_T = [
    # neutral
    ("neutral", "What time does {t} start?", "It starts at seven in the evening."),
    ("neutral", "Where can I read about {t}?", "You can find the details on the main page."),
    ("neutral", "How long is {t}?", "It takes about two hours in total."),
    ("neutral", "Who organised {t}?", "A small team from the city arranged it."),
    ("neutral", "Is {t} far from here?", "It is about ten minutes by bus.", True),
    ("neutral", "Can you tell me about {t}?", "Sure. It is planned for next Monday.", True),
    # happy / laughing
    ("happy", "How was {t}?", "Haha, it was wonderful! I loved every minute of {t}."),
    ("happy", "Did you enjoy {t}?", "Oh yes, haha, {t} was so much fun!"),
    ("happy", "Any good news about {t}?", "Great news! {t} went perfectly, I am so happy."),
    ("happy", "Tell me a funny story about {t}.", "Hahaha, everyone was laughing at {t}, it was hilarious!"),
    ("happy", "Was {t} a success?", "Absolutely, haha, it was the best day ever!", True),
    ("happy", "Are you excited about {t}?", "Yes! I can hardly wait, it will be amazing!", True),
    # sad
    ("sad", "What happened with {t}?", "I am sorry, {t} was cancelled. It is a real pity."),
    ("sad", "Did {t} go well?", "Unfortunately not. I feel quite down about {t}."),
    ("sad", "Are you okay after {t}?", "Not really. {t} left me feeling sad and tired."),
    ("sad", "Will {t} happen again?", "Sadly, no. I miss it already."),
    ("sad", "Why are you quiet about {t}?", "It hurts a little. {t} did not end well.", True),
    ("sad", "Did you hear the news about {t}?", "Yes, I did. It is heartbreaking, honestly.", True),
    # surprised
    ("surprised", "Guess who came to {t}?", "Wow, really? I never expected that at {t}!"),
    ("surprised", "Did you know {t} is free?", "Whoa, no way! {t} is free? That is incredible!"),
    ("surprised", "They moved {t} to tomorrow.", "Oh my goodness, tomorrow? That is so sudden!"),
    ("surprised", "Have you seen the size of {t}?", "Wow! It is enormous, I cannot believe it!"),
    ("surprised", "Did they really sell out {t}?", "What? Already? That is astonishing!", True),
    ("surprised", "Someone famous joined {t}.", "No way! Wow, that is unbelievable!", True),
    # contemptuous
    ("contemptuous", "What do you think of {t}?", "Honestly? {t} was a complete waste of time."),
    ("contemptuous", "Should I go to {t}?", "Please. Only if you enjoy boring things."),
    ("contemptuous", "Did you like {t}?", "Oh sure, if you like cheap and lazy work."),
    ("contemptuous", "Is {t} worth the price?", "Hardly. Whoever planned {t} clearly did not care."),
    ("contemptuous", "Was {t} impressive?", "Impressive? Hmph, not even slightly.", True),
    ("contemptuous", "Everyone loved {t}.", "Well, everyone has questionable taste then.", True),
    # curious
    ("curious", "I went to {t} yesterday.", "Really? Tell me more, what was {t} like?"),
    ("curious", "Something strange happened at {t}.", "Hmm, interesting. What exactly happened there?"),
    ("curious", "I have a secret about {t}.", "Ooh, a secret? I wonder what it could be."),
    ("curious", "Do you know how {t} works?", "Hmm, I am not sure. How does {t} work?"),
    ("curious", "I changed my mind about {t}.", "Oh? What made you change your mind?", True),
    ("curious", "There is a mystery about {t}.", "A mystery? Now I really want to know more!", True),
]

TEMPLATES: tuple[Template, ...] = tuple(
    Template(id=f"{e}-{i % 6}", emotion=e, question=q, answer=a, holdout=bool(rest and rest[0]))
    for i, (e, q, a, *rest) in enumerate(_T))

#: Words that trigger an expression peak, by cue (matched case-insensitively, punctuation stripped); a cue
#: fires only in answers of the emotions listed for it in CUE_EMOTIONS ("hardly" is scorn only in contempt).
CUE_WORDS = {
    "laugh": ("haha", "hahaha", "hehe"),
    "wow": ("wow", "whoa", "oh", "what", "ooh"),
    "sorry": ("sorry", "unfortunately", "sadly", "pity", "heartbreaking", "hurts", "miss"),
    "scorn": ("honestly", "please", "hardly", "hmph", "cheap", "lazy", "boring", "questionable"),
    "wonder": ("hmm", "really", "interesting", "wonder", "mystery", "secret"),
}

CUE_EMOTIONS = {
    "laugh": ("neutral", "happy", "sad", "surprised", "contemptuous", "curious"),
    "wow": ("happy", "surprised", "curious"),
    "sorry": ("sad",),
    "scorn": ("contemptuous",),
    "wonder": ("curious", "surprised"),
}

#: The canned earlier turns (human, assistant) of multi-turn samples until issue 21 (the world's dialogues replace
#: them in generate.py); the read-aloud corpus's vocabulary (read.py) still takes their words.
CONTEXT_TURNS = (
    ("Hi there, how are you today?", "I am doing well, thank you for asking."),
    ("Can I ask you something?", "Of course, go ahead."),
    ("I want to talk about my week.", "Sure, I am listening."),
    ("Do you have a minute?", "Yes, I have plenty of time."),
)
