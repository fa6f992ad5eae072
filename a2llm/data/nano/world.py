"""The world of FLAME-QA-nano: what visitors say to the avatar, what it answers, and dialogues of both (text only).

A visitor's turn is an **intent** said in one of its **wordings**; the avatar's answer is a deterministic function
of the intent, its slots and — for follow-ups — the dialogue so far, so answer accuracy stays measurable turn by
turn. Five kinds of intent:

* ``template``: the 36 question templates of :mod:`a2llm.data.nano.templates` (each template is an intent; its
  first wording is the template's question, the others paraphrase it; the answer is the template's, whatever the
  wording) with a topic slot (:data:`~a2llm.data.nano.templates.TOPICS`).
* ``opener``: what visitors open (or close) with — greetings, "how are you", "who are you", thanks, goodbye,
  compliments, laughter, apologies ... — each with one fixed answer and emotion.
* ``feeling``: the visitor's own feeling ("I feel tired today"), answered with matching empathy.
* ``followup``: "Why?", "Really?", "Tell me more", "And you?", "What about {t}?": answered from the turn the dialogue
  is about (its *anchor*: the last turn that was not a follow-up); with no earlier turn, a clarification.
* ``offdomain``: general knowledge, arithmetic, weather, news, requests, random statements, generated from frames
  and open vocabularies (countries, books, numbers, ...), answered by a short honest fallback (:data:`FALLBACKS`,
  one per frame type): never an in-domain answer, never an invented fact.

Held out of training, deterministically (by a hash of the intent and the text, so lists can grow without
reshuffling): a third of every intent's wordings (never its first), the held-out templates, the
:data:`~a2llm.data.nano.templates.HELD_OUT_TOPICS`, a third of the off-domain frames of every type (never the
first) and a third of every vocabulary (among items that no seen text contains). Training dialogues use only the
seen parts; a test dialogue's last turn carries the one held-out part its split asks for (:func:`draw_dialogue`).
"""
from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from a2llm.data.nano.templates import HELD_OUT_TOPICS, TEMPLATES, TOPICS, TRAIN_TOPICS, Template, _capitalise
from a2llm.data.text import normalise_text

KINDS = ("template", "opener", "feeling", "followup", "offdomain")
#: Test-split holdouts: "voice" (a held-out question voice, the dialogue itself all seen) and the four world ones.
HOLDOUTS = ("voice", "template", "wording", "topic", "offdomain")
#: The held-out parts a turn can carry (``WorldTurn.held_out``).
HELD_PARTS = ("template", "wording", "topic", "frame", "vocabulary")
MIN_WORDINGS = 8

# --------------------------------------------------------------------------------------------------------------
# Template wordings: the template's question first, then paraphrases of the same meaning. Wordings keep the topic
# phrase whole ("{t}" with its determiner) and never coincide with another intent's wording.

TEMPLATE_WORDINGS: dict[str, tuple[str, ...]] = {
    # neutral
    "What time does {t} start?": (
        "When does {t} start?", "At what time does {t} begin?", "When does {t} begin?",
        "Do you know when {t} starts?", "What is the start time of {t}?", "Tell me, what time does {t} start?",
        "So, when does {t} start?"),
    "Where can I read about {t}?": (
        "Where can I find information about {t}?", "Where can I learn more about {t}?",
        "Where do I find the details of {t}?", "Is there somewhere I can read about {t}?",
        "Where are the details about {t}?", "How can I find out more about {t}?", "Where is {t} described?"),
    "How long is {t}?": (
        "How long does {t} take?", "How long does {t} last?", "How much time does {t} take?",
        "What is the length of {t}?", "How many hours is {t}?", "Tell me, how long is {t}?", "So, how long is {t}?"),
    "Who organised {t}?": (
        "Who organized {t}?", "Who arranged {t}?", "Who planned {t}?", "Who put {t} together?",
        "Who was behind {t}?", "Do you know who organised {t}?", "Who set up {t}?"),
    "Is {t} far from here?": (
        "How far is {t} from here?", "Is {t} a long way from here?", "Is {t} close to here?", "Is {t} nearby?",
        "How far away is {t}?", "Is it far to {t}?", "Is {t} near here?"),
    "Can you tell me about {t}?": (
        "Could you tell me about {t}?", "What can you tell me about {t}?", "Tell me about {t}.",
        "What do you know about {t}?", "Can you describe {t}?", "Please tell me about {t}.",
        "I would like to hear about {t}."),
    # happy
    "How was {t}?": (
        "How did {t} go?", "So, how was {t}?", "Tell me, how was {t}?", "How was {t} for you?",
        "How did you find {t}?", "What was {t} like?", "How was {t}, then?"),
    "Did you enjoy {t}?": (
        "Was {t} fun?", "Did you have fun with {t}?", "Was {t} enjoyable?", "So, did you enjoy {t}?",
        "Tell me, did you enjoy {t}?", "Did {t} make you happy?", "Were you happy with {t}?"),
    "Any good news about {t}?": (
        "Is there any good news about {t}?", "Do you have good news about {t}?", "Any happy news about {t}?",
        "Have you heard good news about {t}?", "What is the good news about {t}?", "Got any good news about {t}?",
        "Is there good news on {t}?"),
    "Tell me a funny story about {t}.": (
        "Do you have a funny story about {t}?", "Tell me something funny about {t}.", "Any funny stories about {t}?",
        "What was funny about {t}?", "Can you tell me a funny story about {t}?", "Share a funny story about {t}.",
        "Was there anything funny about {t}?"),
    "Was {t} a success?": (
        "Did {t} succeed?", "Was {t} successful?", "Did {t} work out?", "Was {t} a hit?",
        "Was {t} a real success?", "Would you call {t} a success?", "Was {t} a big success?"),
    "Are you excited about {t}?": (
        "Are you looking forward to {t}?", "Excited about {t}?", "Are you thrilled about {t}?",
        "Are you happy about {t}?", "Is {t} exciting for you?", "Are you eager for {t}?",
        "Do you look forward to {t}?"),
    # sad
    "What happened with {t}?": (
        "What happened to {t}?", "What went on with {t}?", "So, what happened with {t}?",
        "What is going on with {t}?", "Tell me what happened with {t}.", "Did something happen with {t}?",
        "What is the story with {t}?"),
    "Did {t} go well?": (
        "Did {t} go okay?", "Did {t} go all right?", "Did everything go well with {t}?", "Was {t} okay?",
        "Did {t} work well?", "Did things go well with {t}?", "So, did {t} go well?"),
    "Are you okay after {t}?": (
        "Are you all right after {t}?", "Are you fine after {t}?", "How are you after {t}?",
        "Are you feeling okay after {t}?", "Are you okay since {t}?", "Is everything okay after {t}?",
        "Did you recover from {t}?"),
    "Will {t} happen again?": (
        "Will {t} come back?", "Is {t} going to happen again?", "Will {t} be held again?",
        "Will they repeat {t}?", "Will we see {t} again?", "Is there a chance {t} happens again?",
        "Could {t} happen again?"),
    "Why are you quiet about {t}?": (
        "Why are you so quiet about {t}?", "Why do you not talk about {t}?", "Why are you silent about {t}?",
        "Why won't you talk about {t}?", "You seem quiet about {t}, why?", "Why say so little about {t}?",
        "Why are you not saying much about {t}?"),
    "Did you hear the news about {t}?": (
        "Have you heard the news about {t}?", "Did you hear about {t}?", "Have you heard what happened to {t}?",
        "Did anyone tell you about {t}?", "Do you know the news about {t}?", "Have you heard about {t}?",
        "Did you see the news about {t}?"),
    # surprised
    "Guess who came to {t}?": (
        "Guess who showed up at {t}?", "Guess who was at {t}?", "You will never guess who came to {t}.",
        "Can you guess who came to {t}?", "Guess who turned up at {t}!", "Guess who I saw at {t}?",
        "Guess who visited {t}?"),
    "Did you know {t} is free?": (
        "Did you know that {t} is free?", "{t} is free, did you know?", "You know {t} is free, right?",
        "Guess what, {t} is free!", "Did you hear {t} is free?", "Were you aware that {t} is free?",
        "Did you know {t} costs nothing?"),
    "They moved {t} to tomorrow.": (
        "{t} was moved to tomorrow.", "They have moved {t} to tomorrow.", "They changed {t} to tomorrow.",
        "{t} is now tomorrow.", "They pushed {t} to tomorrow.", "They put {t} on tomorrow instead.",
        "Did you hear? They moved {t} to tomorrow."),
    "Have you seen the size of {t}?": (
        "Did you see how big {t} is?", "Have you seen how big {t} is?", "Did you see the size of {t}?",
        "{t} is huge, have you seen it?", "Look at the size of {t}!", "Have you noticed how big {t} is?",
        "Can you believe the size of {t}?"),
    "Did they really sell out {t}?": (
        "Is {t} really sold out?", "{t} is sold out, did you know?", "Did {t} really sell out?",
        "They sold out {t}!", "Is {t} already sold out?", "Did {t} sell out already?", "I heard {t} sold out."),
    "Someone famous joined {t}.": (
        "A famous person joined {t}.", "Someone famous came to {t}.", "A celebrity joined {t}.",
        "Someone famous was at {t}.", "A star showed up at {t}.", "Someone really famous joined {t}.",
        "Guess what, someone famous joined {t}."),
    # contemptuous
    "What do you think of {t}?": (
        "What do you think about {t}?", "What is your opinion of {t}?", "What is your view on {t}?",
        "Your thoughts on {t}?", "What did you think of {t}?", "Tell me what you think of {t}.",
        "Any thoughts on {t}?"),
    "Should I go to {t}?": (
        "Is it worth going to {t}?", "Do you think I should go to {t}?", "Would you go to {t}?",
        "Should I attend {t}?", "Is {t} worth going to?", "Do you recommend {t}?", "Would you recommend {t}?"),
    "Did you like {t}?": (
        "Did you like {t} at all?", "Was {t} any good?", "Did {t} please you?", "Was {t} good?",
        "Were you a fan of {t}?", "Did you think {t} was good?", "So, did you like {t}?"),
    "Is {t} worth the price?": (
        "Is {t} worth the money?", "Is {t} worth paying for?", "Is {t} good value?", "Was {t} worth the price?",
        "Is {t} worth it?", "Does {t} cost too much?", "Is {t} expensive for what it is?"),
    "Was {t} impressive?": (
        "Were you impressed by {t}?", "Did {t} impress you?", "Was {t} amazing?", "Was {t} really impressive?",
        "Did you find {t} impressive?", "Was {t} spectacular?", "Would you say {t} was impressive?"),
    "Everyone loved {t}.": (
        "Everybody loved {t}.", "All my friends loved {t}.", "People really loved {t}.", "Everyone enjoyed {t}.",
        "Everyone says {t} was great.", "Everyone I know loved {t}.", "Everyone was happy with {t}."),
    # curious
    "I went to {t} yesterday.": (
        "Yesterday I went to {t}.", "I was at {t} yesterday.", "I went to {t} last night.",
        "I just came back from {t}.", "I have been to {t}.", "I attended {t} yesterday.",
        "Guess what, I went to {t}."),
    "Something strange happened at {t}.": (
        "Something odd happened at {t}.", "A strange thing happened at {t}.", "Something weird happened at {t}.",
        "Something unusual happened at {t}.", "Something strange went on at {t}.",
        "There was something strange at {t}.", "Something very strange happened at {t}."),
    "I have a secret about {t}.": (
        "I know a secret about {t}.", "I have got a secret about {t}.", "There is a secret about {t}.",
        "Can I tell you a secret about {t}?", "I want to tell you a secret about {t}.",
        "I found out a secret about {t}.", "Want to hear a secret about {t}?"),
    "Do you know how {t} works?": (
        "Do you understand how {t} works?", "Can you explain how {t} works?", "Any idea how {t} works?",
        "Do you know the way {t} works?", "How exactly does {t} work?", "Could you explain {t} to me?",
        "Do you get how {t} works?"),
    "I changed my mind about {t}.": (
        "I have changed my mind about {t}.", "I feel differently about {t} now.", "I see {t} differently now.",
        "I no longer think the same about {t}.", "My opinion about {t} has changed.",
        "I changed my opinion of {t}.", "I think differently about {t} now."),
    "There is a mystery about {t}.": (
        "There is something mysterious about {t}.", "{t} is a real mystery.", "Nobody can explain {t}.",
        "There is an unsolved mystery about {t}.", "I found a mystery about {t}.", "{t} is full of mystery.",
        "Something about {t} is a mystery."),
}

# --------------------------------------------------------------------------------------------------------------
# Openers: (id, where in a dialogue it is likely, emotion, answer, wordings). The answers are honest about what
# the avatar is.

IDENTITY = "I am A²-LLM nano, a tiny talking avatar."

_OPENERS = (
    ("hello", "start", "happy", "Hello! It is nice to talk to you.",
     ("Hello!", "Hi!", "Hi there!", "Hey!", "Good morning!", "Good afternoon!", "Good evening!", "Hello there!",
      "Hey there!", "Hi, nice to meet you.")),
    ("how-are-you", "start", "happy", "I am doing well, thank you for asking.",
     ("How are you?", "Hi there, how are you today?", "How are you doing?", "How is it going?",
      "How have you been?", "Are you doing well?", "How do you feel today?", "How are things?",
      "How are you feeling?", "How is your day going?")),
    ("who-are-you", "start", "neutral", IDENTITY,
     ("Who are you?", "What is your name?", "What are you?", "What should I call you?", "Tell me about yourself.",
      "Introduce yourself, please.", "What's your name?", "Are you a robot?", "Who am I talking to?")),
    ("what-can-you-do", "start", "happy",
     "I can chat about little things like concerts, trips or movies, and show how I feel.",
     ("What can you do?", "What are you good at?", "How can you help me?", "What do you do?",
      "What can I ask you?", "What can we talk about?", "What are you able to do?",
      "What kind of things can you talk about?", "What is your job?")),
    ("hear-me", "start", "neutral", "Yes, I can hear you clearly.",
     ("Can you hear me?", "Are you there?", "Are you listening?", "Is this working?", "Can you understand me?",
      "Do you hear me?", "Hello, are you there?", "Is anyone there?", "Can you hear me okay?")),
    ("thanks", "end", "happy", "You are welcome! I am glad I could help.",
     ("Thank you!", "Thanks!", "Thanks a lot.", "Thank you very much.", "Thanks for the chat.", "I appreciate it.",
      "Thanks, that helps.", "Many thanks.", "Thank you so much.")),
    ("goodbye", "end", "happy", "Goodbye! It was lovely talking to you.",
     ("Goodbye!", "Bye!", "See you later.", "See you soon.", "Good night!", "I have to go now.",
      "Talk to you later.", "Bye for now.", "I am leaving now, bye.")),
    ("compliment", "any", "happy", "Oh, thank you! That is so kind of you.",
     ("You are great!", "You are so smart.", "I like you.", "You look nice today.", "You are funny.",
      "You are really clever.", "Nice job!", "You are doing great.", "You are a lovely avatar.")),
    ("laughter", "any", "happy", "Haha, I am glad you are laughing!",
     ("Haha!", "Hahaha!", "Haha, that is funny.", "Hehe.", "That is hilarious!", "Haha, good one.",
      "You made me laugh.", "Lol, that is funny.", "Haha, I love it.")),
    ("apology", "any", "neutral", "No problem at all, do not worry about it.",
     ("Sorry!", "I am sorry.", "My apologies.", "Sorry about that.", "Oops, sorry.", "Sorry, my mistake.",
      "I apologise.", "Forgive me.", "Sorry, I did not mean that.")),
    ("okay", "any", "neutral", "All right. What would you like to talk about next?",
     ("Okay.", "Alright.", "I see.", "Cool.", "Got it.", "Fine.", "Sure.", "Right.", "Okay, I understand.")),
)

# --------------------------------------------------------------------------------------------------------------
# Feelings: (id, valence, emotion, answer, adjectives). Every frame takes every adjective.

FEELING_FRAMES = ("I feel {f} today.", "I am {f}.", "I am feeling {f}.", "I feel a bit {f}.", "I am so {f} today.",
                  "Today I feel {f}.", "I feel really {f}.", "I have been {f} all day.", "Honestly, I am {f}.")

_FEELINGS = (
    ("sad", -1, "sad", "I am sorry to hear that. I hope you feel better soon.", ("sad", "down", "unhappy")),
    ("tired", -1, "sad", "Oh no, I am sorry. Maybe you need a good rest.", ("tired", "exhausted", "sleepy")),
    ("lonely", -1, "sad", "I am sorry you feel that way. I am here, and I am happy to talk.", ("lonely", "alone")),
    ("angry", -1, "sad", "I am sorry you are upset. Do you want to talk about it?", ("angry", "upset", "annoyed")),
    ("stressed", -1, "sad", "Sorry to hear that. Take a deep breath, one thing at a time.",
     ("stressed", "overwhelmed")),
    ("nervous", -1, "neutral", "That is okay, everyone gets nervous sometimes. You will be fine.",
     ("nervous", "anxious", "worried")),
    ("bored", -1, "curious", "Hmm, bored? Let us talk about something fun, then.", ("bored",)),
    ("excited", 1, "happy", "Wow, that is wonderful! I am excited for you.", ("excited", "thrilled")),
    ("happy", 1, "happy", "Haha, that is great! I am happy for you.", ("happy", "glad", "cheerful")),
    ("relaxed", 1, "happy", "That is lovely. A calm day is a good day.", ("relaxed", "calm")),
)

# --------------------------------------------------------------------------------------------------------------
# Follow-ups: their wordings, and the answers as functions of the anchor (the turn the dialogue is about).

_FOLLOWUPS = (
    ("why", ("Why?", "Why is that?", "How come?", "Why do you say that?", "What makes you say that?", "But why?",
             "Why so?", "Can you tell me why?", "Why is that so?")),
    ("really", ("Really?", "Is that true?", "Are you sure?", "Seriously?", "Is that so?", "Honestly?",
                "Do you mean it?", "For real?", "Is that really true?")),
    ("more", ("Tell me more.", "Go on.", "And then?", "What else?", "Tell me more about it.", "Can you say more?",
              "Please go on.", "Anything else?", "Keep going.")),
    ("and-you", ("And you?", "What about you?", "How about you?", "And how are you?", "And you, how do you feel?",
                 "How about yourself?", "And yourself?", "What about yourself?", "How do you feel, then?")),
    ("what-about", ("What about {t}?", "And {t}?", "How about {t}?", "And what about {t}?", "What about {t}, then?",
                    "And how about {t}?", "Now, what about {t}?", "Okay, and {t}?", "Same question about {t}.")),
)

#: "Why?" after a template answer: a reason per emotion of that answer, naming its topic.
WHY = {
    "neutral": "That is simply what the plan for {t} says.",
    "happy": "Haha, because {t} made everyone smile!",
    "sad": "Sadly, {t} meant a lot to me, and it did not go as planned.",
    "surprised": "Because nobody saw that coming. Wow, {t} surprised everyone!",
    "contemptuous": "Honestly? Because {t} was badly planned from the start.",
    "curious": "Hmm, because {t} still puzzles me a little.",
}
#: "Really?" after any answer: a confirmation per emotion of the anchor's answer.
CONFIRM = {
    "neutral": "Yes, that is right.",
    "happy": "Yes, really! Haha, I mean it.",
    "sad": "Yes, sadly it is true.",
    "surprised": "Yes, really! Wow, I could hardly believe it either.",
    "contemptuous": "Honestly, yes. I do not say that lightly.",
    "curious": "Yes, really. Hmm, I wonder what you think.",
}
#: "Tell me more" after a template answer, per emotion, naming its topic.
MORE = {
    "neutral": "All the details about {t} are on the main page.",
    "happy": "The best part of {t} was the people, haha!",
    "sad": "Sadly, there is not much more to say about {t}.",
    "surprised": "Wow, {t} was full of surprises, one after another!",
    "contemptuous": "Please. There is nothing more worth saying about {t}.",
    "curious": "Hmm, I was hoping you would tell me more about {t}!",
}
#: Follow-up answers that do not name a topic: key -> (answer, emotion).
FOLLOW_ANSWERS = {
    "why-feeling": ("Because I care about how you feel.", "happy"),
    "why-opener": ("I just enjoy talking with you, that is all.", "happy"),
    "why-offdomain": ("Sorry, I am only a tiny demo model. I know very little about the world.", "sad"),
    "more-feeling": ("I am listening. Tell me what is on your mind.", "neutral"),
    "more-other": ("What would you like to talk about? I like chatting about concerts, trips and movies.", "neutral"),
    "and-you-pleasant": ("I am happy too, thank you for asking!", "happy"),
    "and-you-unpleasant": ("I am fine, thank you for asking. I hope your day gets better.", "neutral"),
    "and-you-other": ("Me? I am doing well, thank you for asking.", "happy"),
    "clarify": ("Sorry, what do you mean?", "curious"),
}
#: "What about {t}?" with nothing to compare to: a clarification naming the topic.
CLARIFY_TOPIC = ("Sorry, what would you like to know about {t}?", "curious")

# --------------------------------------------------------------------------------------------------------------
# Off-domain: frames per type (with vocabulary slots; a slot named like "number2" takes the "number" vocabulary),
# each type answered by one fallback of a fixed family of four.

#: The fallback family: key -> (answer, emotion). The sad ones are apologetic; the generator lowers the intensity
#: of every off-domain answer's face (NanoConfig.offdomain_intensity), so they are mildly sad.
FALLBACKS = {
    "unknown": ("Sorry, I am a tiny demo model, so I do not know that. "
                "I can chat about things like concerts, trips or movies.", "sad"),
    "cannot": ("Sorry, I cannot do that. I am only a tiny demo model that talks.", "sad"),
    "offline": ("I cannot see the news or the weather from here. Ask me about a concert, a trip or a movie instead.",
                "neutral"),
    "statement": ("I see. I am a tiny demo model, so I can only chat about things like concerts, trips or movies.",
                  "neutral"),
}

_OFFDOMAIN = (
    ("capital", "unknown", (
        "What is the capital of {country}?", "Which city is the capital of {country}?",
        "Do you know the capital of {country}?", "Tell me the capital of {country}.",
        "What is the capital city of {country}?", "Can you name the capital of {country}?",
        "I need the capital of {country}.", "Where is the capital of {country}?")),
    ("author", "unknown", (
        "Who wrote {book}?", "Who is the author of {book}?", "Do you know who wrote {book}?",
        "Who was the writer of {book}?", "Tell me who wrote {book}.", "When was {book} written?",
        "What is {book} about?", "Is {book} a good read?")),
    ("fact", "unknown", (
        "How many people live in {city}?", "How old is {city}?", "What language do they speak in {country}?",
        "What is the biggest city in {country}?", "How far is {city} from {city2}?", "What time is it in {city}?",
        "What is the currency of {country}?", "How big is {country}?")),
    ("arithmetic", "unknown", (
        "What is {number} plus {number2}?", "What is {number} times {number2}?",
        "How much is {number} minus {number2}?",
        "Can you add {number} and {number2}?", "What is {number} divided by {number2}?",
        "Multiply {number} by {number2}.", "What do you get when you add {number} to {number2}?",
        "Is {number} bigger than {number2}?", "What is the square root of {number}?")),
    ("weather", "offline", (
        "What is the weather like in {city}?", "Will it rain in {city} tomorrow?", "Is it sunny in {city} today?",
        "How hot is it in {city}?", "Is it going to snow in {city}?", "What is the temperature in {city}?",
        "Do I need an umbrella in {city}?", "What is the weather like today?", "Is it cold outside?")),
    ("news", "offline", (
        "What is in the news today?", "What is the latest news from {city}?", "What happened in {country} today?",
        "Any news from {country}?", "Who won the election in {country}?", "What are the headlines today?",
        "What is happening in {city} right now?", "Tell me the news from {city}.")),
    ("request", "cannot", (
        "Can you book a taxi to {city}?", "Play some {genre} music.", "Set a timer for {number} minutes.",
        "Call my {relative}.", "Order some {food} for me.", "Send a message to my {relative}.", "Tell me a joke.",
        "Turn on the lights.", "Can you buy me a {object}?", "Find me a flight to {city}.", "Sing me a song.",
        "Remind me to call my {relative}.")),
    ("statement", "statement", (
        "I like {food}.", "My {relative} lives in {city}.", "I have a pet {animal}.", "I bought a new {object} today.",
        "My favourite colour is {colour}.", "I live in {city}.", "I had {food} for lunch.",
        "My {relative} is visiting next week.", "I saw a {animal} in the street.", "I painted my room {colour}.")),
)

#: Open vocabularies of the off-domain slots (a third of each held out of training: :data:`HELD_OUT_VOCABULARY`).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "country": ("France", "Spain", "Italy", "Germany", "Japan", "Brazil", "Canada", "Mexico", "Egypt", "India",
                "China", "Kenya", "Peru", "Chile", "Norway", "Sweden", "Poland", "Greece", "Turkey", "Portugal",
                "Argentina", "Australia", "Vietnam", "Morocco", "Ireland", "Iceland", "Finland", "Nigeria",
                "Thailand", "Austria"),
    "city": ("Paris", "London", "Berlin", "Madrid", "Rome", "Tokyo", "Cairo", "Lima", "Oslo", "Dublin", "Vienna",
             "Prague", "Sydney", "Toronto", "Chicago", "Boston", "Lisbon", "Athens", "Warsaw", "Seoul", "Delhi",
             "Nairobi", "Istanbul", "Montreal"),
    "book": ("Hamlet", "Moby Dick", "War and Peace", "Pride and Prejudice", "Don Quixote", "Jane Eyre",
             "Frankenstein", "Dracula", "Oliver Twist", "Little Women", "Treasure Island", "Robinson Crusoe",
             "Macbeth", "Anna Karenina", "The Odyssey", "Great Expectations", "Wuthering Heights",
             "Gulliver's Travels", "Heart of Darkness", "Brave New World"),
    "number": ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
               "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
               "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"),
    "genre": ("jazz", "rock", "pop", "classical", "reggae", "blues", "folk", "disco", "techno", "piano"),
    "food": ("pizza", "pasta", "sushi", "soup", "salad", "rice", "bread", "cheese", "chocolate", "noodles",
             "pancakes", "curry", "tacos", "apples", "ice cream"),
    "relative": ("mother", "father", "sister", "brother", "aunt", "uncle", "grandmother", "grandfather", "cousin",
                 "neighbour"),
    "animal": ("cat", "dog", "rabbit", "parrot", "turtle", "hamster", "horse", "goat", "fox", "snake", "frog",
               "duck"),
    "object": ("phone", "bike", "lamp", "camera", "watch", "chair", "laptop", "guitar", "kettle", "jacket",
               "backpack", "clock"),
    "colour": ("red", "blue", "green", "yellow", "purple", "pink", "grey", "brown", "black", "white"),
}


# --------------------------------------------------------------------------------------------------------------
# Data structures

#: The answer comparison's form (:func:`a2llm.data.text.normalise_text`, shared with the generator).
normalise = normalise_text


def _hash(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _held_third(key: str, items: Sequence[str], eligible: Sequence[int]) -> frozenset[int]:
    """Indices of a third of ``items`` (rounded) among ``eligible``, chosen by a hash of (key, item text): stable
    when a list grows, and the same on every machine."""
    k = min(len(eligible), round(len(items) / 3))
    return frozenset(sorted(eligible, key=lambda i: _hash(key, items[i]))[:k])


def _slots(wording: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(wording) if name)


def _vocabulary_of(slot: str) -> str:
    return slot.rstrip("0123456789")


@dataclass(frozen=True)
class Intent:
    """What a visitor's turn means. ``wordings``: how it is said (``{t}``: the topic; other ``{name}``: a slot of
    :data:`VOCABULARY`); ``held_wordings``: indices of the wordings only the test split uses. ``emotion`` is the
    answer's where it is fixed (templates, openers, feelings, off-domain); ``answer`` is set for openers, feelings
    and off-domain frames (their fallback); template and follow-up answers come from :func:`respond`."""

    id: str
    kind: str
    wordings: tuple[str, ...]
    held_wordings: frozenset[int]
    emotion: str | None = None
    answer: str | None = None
    where: str = "any"                  # openers: "start" | "any" | "end" of a dialogue
    valence: int = 0                    # feelings: +1 pleasant, -1 unpleasant
    fallback: str | None = None         # off-domain: the key of its FALLBACKS answer
    held: bool = False                  # a held-out template: every wording is test-only

    @property
    def seen_wordings(self) -> tuple[int, ...]:
        return tuple(i for i in range(len(self.wordings)) if i not in self.held_wordings)

    @property
    def has_topic(self) -> bool:
        return "{t}" in self.wordings[0]


@dataclass(frozen=True)
class Anchor:
    """What the dialogue is about after a turn: the last turn that was not a follow-up (a "What about {t}?" on a
    template moves it to the new topic)."""

    kind: str
    intent: str
    emotion: str
    topic: str | None = None
    template: str | None = None
    valence: int = 0


@dataclass(frozen=True)
class WorldTurn:
    """One exchange: the visitor's ``question`` and the avatar's ``answer`` with its ``emotion``.

    ``wording`` indexes ``INTENTS[intent].wordings``; ``template`` names the template whose answer this is (template
    turns and "What about {t}?" follow-ups), else None; ``slots``: the off-domain vocabulary used;
    ``held_out``: the parts of this question no training sample has (:data:`HELD_PARTS`)."""

    question: str
    answer: str
    emotion: str
    kind: str
    intent: str
    wording: int
    topic: str | None = None
    template: str | None = None
    slots: tuple[tuple[str, str], ...] = ()
    held_out: tuple[str, ...] = ()
    anchor: Anchor | None = None

    @property
    def answer_id(self) -> str:
        """The template id for template answers, else the intent id (``meta["template"]`` of a sample)."""
        return self.template or self.intent


def _intent(id: str, kind: str, wordings: Sequence[str], **kw) -> Intent:
    wordings = tuple(wordings)
    if len(set(wordings)) != len(wordings):
        raise ValueError(f"intent {id}: repeated wordings")
    # The first wording (the canonical one, a template's own question) always trains.
    return Intent(id=id, kind=kind, wordings=wordings,
                  held_wordings=_held_third(id, wordings, range(1, len(wordings))), **kw)


def _build_intents() -> dict[str, Intent]:
    out: list[Intent] = []
    for t in TEMPLATES:
        out.append(_intent(t.id, "template", (t.question,) + TEMPLATE_WORDINGS[t.question], emotion=t.emotion,
                           held=t.holdout))
    for key, where, emotion, answer, wordings in _OPENERS:
        out.append(_intent(f"opener-{key}", "opener", wordings, emotion=emotion, answer=answer, where=where))
    for key, valence, emotion, answer, adjectives in _FEELINGS:
        wordings = [f.format(f=a) for f in FEELING_FRAMES for a in adjectives]
        out.append(_intent(f"feeling-{key}", "feeling", wordings, emotion=emotion, answer=answer, valence=valence))
    for key, wordings in _FOLLOWUPS:
        out.append(_intent(f"followup-{key}", "followup", wordings))
    for key, fallback, frames in _OFFDOMAIN:
        out.append(_intent(f"offdomain-{key}", "offdomain", frames, emotion=FALLBACKS[fallback][1],
                           answer=FALLBACKS[fallback][0], fallback=fallback))
    return {i.id: i for i in out}


INTENTS: dict[str, Intent] = _build_intents()
TEMPLATE_BY_ID: dict[str, Template] = {t.id: t for t in TEMPLATES}
BY_KIND: dict[str, tuple[Intent, ...]] = {k: tuple(i for i in INTENTS.values() if i.kind == k) for k in KINDS}


def _fixed_texts() -> list[str]:
    """Every text of the world that holds no vocabulary slot (wordings and answers, topic slot removed) plus the
    topics: a held-out vocabulary item must occur in none of them."""
    texts = [w.replace("{t}", " ") for i in INTENTS.values() for w in i.wordings]
    texts += [t.answer.replace("{t}", " ") for t in TEMPLATES] + list(TOPICS)
    texts += [i.answer for i in INTENTS.values() if i.answer]
    texts += [a.replace("{t}", " ") for table in (WHY, CONFIRM, MORE) for a in table.values()]
    texts += [a for a, _ in FOLLOW_ANSWERS.values()] + [CLARIFY_TOPIC[0].replace("{t}", " ")]
    return [re.sub(r"\{[a-z0-9]+\}", " ", t) for t in texts]


def _occurs(item: str, text: str) -> bool:
    return re.search(rf"(?<![a-z']){re.escape(item.lower())}(?![a-z'])", text.lower()) is not None


def _build_held_vocabulary() -> dict[str, frozenset[str]]:
    fixed = "\n".join(_fixed_texts())                         # one search per item, not one per text
    every = [x for xs in VOCABULARY.values() for x in xs]
    out = {}
    for name, items in VOCABULARY.items():
        # Eligible: an item no fixed text holds, that holds no other item and that no other item holds, so a
        # training text built from seen items never contains a held-out one.
        eligible = [k for k, item in enumerate(items)
                    if not _occurs(item, fixed)
                    and not any(_occurs(item, o) or _occurs(o, item) for o in every if o != item)]
        out[name] = frozenset(items[k] for k in _held_third(name, items, eligible))
    return out


#: Vocabulary items only the test split uses (a third of each vocabulary, none of them in any seen text).
HELD_OUT_VOCABULARY: dict[str, frozenset[str]] = _build_held_vocabulary()
SEEN_VOCABULARY: dict[str, tuple[str, ...]] = {
    n: tuple(x for x in xs if x not in HELD_OUT_VOCABULARY[n]) for n, xs in VOCABULARY.items()}


# --------------------------------------------------------------------------------------------------------------
# Answers

def _template_answer(template: Template, topic: str) -> str:
    return template.fill(topic)[1]


def _fill(text: str, topic: str | None) -> str:
    return _capitalise(text.format(t=topic) if topic is not None else text)


def respond(intent: Intent | str, topic: str | None = None,
            anchor: Anchor | None = None) -> tuple[str, str, str | None, Anchor | None]:
    """The avatar's answer to ``intent`` (with ``topic`` for topic intents) when the dialogue is about ``anchor``
    (None: nothing said yet). Returns (answer text, emotion, template id of the answer or None, the new anchor).
    The answer depends on nothing else: not the wording, not the off-domain vocabulary."""
    intent = INTENTS[intent] if isinstance(intent, str) else intent
    if intent.has_topic and topic is None:
        raise ValueError(f"intent {intent.id} needs a topic")
    if intent.kind == "template":
        tpl = TEMPLATE_BY_ID[intent.id]
        return (_template_answer(tpl, topic), tpl.emotion, tpl.id,
                Anchor("template", tpl.id, tpl.emotion, topic, tpl.id))
    if intent.kind in ("opener", "feeling", "offdomain"):
        return intent.answer, intent.emotion, None, Anchor(intent.kind, intent.id, intent.emotion,
                                                           valence=intent.valence)
    key = intent.id.removeprefix("followup-")
    if anchor is None:                                        # a follow-up with nothing before it
        if key == "what-about":
            return _fill(CLARIFY_TOPIC[0], topic), CLARIFY_TOPIC[1], None, None
        return (*FOLLOW_ANSWERS["clarify"], None, None)
    if key == "what-about":
        if anchor.kind == "template":
            tpl = TEMPLATE_BY_ID[anchor.template]
            return (_template_answer(tpl, topic), tpl.emotion, tpl.id,
                    Anchor("template", tpl.id, tpl.emotion, topic, tpl.id))
        return _fill(CLARIFY_TOPIC[0], topic), CLARIFY_TOPIC[1], None, anchor
    if key == "really":
        return CONFIRM[anchor.emotion], anchor.emotion, None, anchor
    if key == "and-you":
        which = ("pleasant" if anchor.valence > 0 else "unpleasant") if anchor.kind == "feeling" else "other"
        return (*FOLLOW_ANSWERS[f"and-you-{which}"], None, anchor)
    if anchor.kind == "template":                             # why / more: about the template's topic
        table = WHY if key == "why" else MORE
        return _fill(table[anchor.emotion], anchor.topic), anchor.emotion, None, anchor
    if key == "why":
        return (*FOLLOW_ANSWERS[{"feeling": "why-feeling", "opener": "why-opener",
                                 "offdomain": "why-offdomain"}[anchor.kind]], None, anchor)
    return (*FOLLOW_ANSWERS["more-feeling" if anchor.kind == "feeling" else "more-other"], None, anchor)


def render(intent: Intent | str, wording: int, topic: str | None = None, slots: dict[str, str] | None = None) -> str:
    """The question text of ``intent``'s wording ``wording`` with its topic and vocabulary slots filled."""
    intent = INTENTS[intent] if isinstance(intent, str) else intent
    return _capitalise(intent.wordings[wording].format(t=topic, **(slots or {})))


def _anchors() -> list[Anchor | None]:
    """One anchor per distinct answer behaviour (templates with every topic)."""
    out: list[Anchor | None] = [None]
    out += [Anchor("template", t.id, t.emotion, topic, t.id) for t in TEMPLATES for topic in TOPICS]
    out += [respond(i)[3] for k in ("opener", "feeling", "offdomain") for i in BY_KIND[k]]
    return out


@lru_cache(maxsize=1)
def answer_inventory() -> frozenset[str]:
    """Every answer text the world can produce (every intent, topic and anchor): a reply outside it is garbled."""
    out = set()
    for intent in INTENTS.values():
        if intent.kind != "followup":
            out.update(respond(intent, topic)[0] for topic in (TOPICS if intent.has_topic else (None,)))
            continue
        for anchor in _anchors():
            if intent.has_topic:
                if anchor is None or anchor.kind != "template" or anchor.topic == TOPICS[0]:
                    out.update(respond(intent, topic, anchor)[0] for topic in TOPICS)
            else:
                out.add(respond(intent, None, anchor)[0])
    return frozenset(out)


@lru_cache(maxsize=1)
def _normalised_inventory() -> frozenset[str]:
    return frozenset(normalise(a) for a in answer_inventory())


def is_inventory_answer(text: str) -> bool:
    """Whether ``text`` is one of the world's answers, ignoring case, punctuation and spacing."""
    return normalise(text) in _normalised_inventory()


# --------------------------------------------------------------------------------------------------------------
# Dialogues

#: Kind weights of a turn, by what the dialogue is about (None: the first turn).
_KIND_WEIGHTS = {
    None: {"opener": 0.30, "template": 0.40, "feeling": 0.10, "offdomain": 0.12, "followup": 0.08},
    "template": {"template": 0.30, "followup": 0.36, "opener": 0.12, "feeling": 0.08, "offdomain": 0.14},
    "feeling": {"followup": 0.30, "template": 0.35, "opener": 0.15, "feeling": 0.05, "offdomain": 0.15},
    "opener": {"template": 0.45, "opener": 0.20, "feeling": 0.12, "offdomain": 0.13, "followup": 0.10},
    "offdomain": {"template": 0.45, "opener": 0.20, "feeling": 0.12, "offdomain": 0.13, "followup": 0.10},
}
#: Follow-up weights by the anchor's kind ("And you?" only after a feeling; every follow-up may open a dialogue).
_FOLLOW_WEIGHTS = {
    None: {"why": 0.2, "really": 0.2, "more": 0.2, "and-you": 0.2, "what-about": 0.2},
    "template": {"what-about": 0.35, "why": 0.25, "really": 0.2, "more": 0.2},
    "feeling": {"and-you": 0.5, "why": 0.2, "really": 0.2, "more": 0.1},
    "opener": {"why": 0.3, "really": 0.4, "more": 0.3},
    "offdomain": {"why": 0.4, "really": 0.3, "more": 0.3},
}
#: Opener weights by position: where the opener is usually said ("start" / "any" / "end") -> weight.
_OPENER_WEIGHTS = {
    "first": {"start": 1.0, "any": 0.3, "end": 0.05},
    "middle": {"start": 0.3, "any": 1.0, "end": 0.3},
    "last": {"start": 0.2, "any": 0.6, "end": 1.0},
}
TOPIC_PERSISTENCE = 0.6     # a template turn keeps the dialogue's topic with this probability


def _choice(rng: np.random.Generator, items: Sequence, weights: Sequence[float] | None = None):
    if weights is None:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, float)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _weighted(rng: np.random.Generator, table: dict):
    keys = list(table)
    return _choice(rng, keys, [table[k] for k in keys])


def draw_num_turns(rng: np.random.Generator, single_fraction: float = 0.3, max_turns: int = 12) -> int:
    """Turns of a dialogue: 1 with probability ``single_fraction``, else uniform over 2..``max_turns``."""
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    if max_turns == 1 or rng.random() < single_fraction:
        return 1
    return int(rng.integers(2, max_turns + 1))


def _topic(rng: np.random.Generator, anchor: Anchor | None, pool: Sequence[str], exclude: str | None = None) -> str:
    if anchor is not None and anchor.topic in pool and anchor.topic != exclude and rng.random() < TOPIC_PERSISTENCE:
        return anchor.topic
    options = [t for t in pool if t != exclude]
    return _choice(rng, options)


def _turn(intent: Intent, wording: int, topic: str | None, slots: dict[str, str], anchor: Anchor | None,
          held_out: Sequence[str]) -> WorldTurn:
    answer, emotion, template, new_anchor = respond(intent, topic, anchor)
    if intent.kind == "followup" and topic is None and anchor is not None:
        topic = anchor.topic                                   # why / more / really speak of the anchor's topic
    return WorldTurn(question=render(intent, wording, topic if intent.has_topic else None, slots), answer=answer,
                     emotion=emotion, kind=intent.kind, intent=intent.id, wording=wording, topic=topic,
                     template=template, slots=tuple(sorted(slots.items())), held_out=tuple(held_out),
                     anchor=new_anchor)


def _fill_slots(rng: np.random.Generator, wording: str, held_slot: str | None = None) -> dict[str, str]:
    out = {}
    for slot in _slots(wording):
        if slot == "t":
            continue
        name = _vocabulary_of(slot)
        pool = sorted(HELD_OUT_VOCABULARY[name]) if slot == held_slot else SEEN_VOCABULARY[name]
        out[slot] = _choice(rng, pool)
    return out


def _draw_free(rng: np.random.Generator, k: int, n: int, anchor: Anchor | None, prev: WorldTurn | None) -> WorldTurn:
    """A turn of the seen world that fits the dialogue so far."""
    kind = _weighted(rng, _KIND_WEIGHTS[anchor.kind if anchor else None])
    topic, slots = None, {}
    if kind == "template":
        intent = _choice(rng, [i for i in BY_KIND["template"] if not i.held])
        topic = _topic(rng, anchor, TRAIN_TOPICS)
    elif kind == "opener":
        where = _OPENER_WEIGHTS["first" if k == 0 else "last" if k == n - 1 else "middle"]
        openers = BY_KIND["opener"]
        intent = _choice(rng, openers, [where[i.where] for i in openers])
    elif kind == "feeling":
        intent = _choice(rng, BY_KIND["feeling"])
    elif kind == "followup":
        table = dict(_FOLLOW_WEIGHTS[anchor.kind if anchor else None])
        if prev is not None and prev.kind == "followup":       # no "Why?" right after "Why?"
            table.pop(prev.intent.removeprefix("followup-"), None)
        intent = INTENTS["followup-" + _weighted(rng, table)]
        if intent.has_topic:
            topic = _topic(rng, None, TRAIN_TOPICS, exclude=anchor.topic if anchor else None)
    else:
        intent = _choice(rng, BY_KIND["offdomain"])
    wording = _choice(rng, intent.seen_wordings)
    if kind == "offdomain":
        slots = _fill_slots(rng, intent.wordings[wording])
    return _turn(intent, wording, topic, slots, anchor, ())


def _draw_held(rng: np.random.Generator, holdout: str, anchor: Anchor | None) -> WorldTurn:
    """A turn carrying the held-out part ``holdout`` asks for (everything else seen)."""
    if holdout == "template":
        intent = _choice(rng, [i for i in BY_KIND["template"] if i.held])
        return _turn(intent, _choice(rng, intent.seen_wordings), _topic(rng, anchor, TRAIN_TOPICS), {}, anchor,
                     ("template",))
    if holdout == "wording":
        kind = _weighted(rng, {"template": 0.45, "opener": 0.2, "feeling": 0.15, "followup": 0.2})
        pool = [i for i in BY_KIND[kind] if not i.held]
        intent = _choice(rng, pool)
        topic = None
        if intent.has_topic:
            exclude = anchor.topic if anchor and intent.kind == "followup" else None
            topic = _topic(rng, anchor if intent.kind == "template" else None, TRAIN_TOPICS, exclude=exclude)
        return _turn(intent, _choice(rng, sorted(intent.held_wordings)), topic, {}, anchor, ("wording",))
    if holdout == "topic":
        if anchor is not None and anchor.kind == "template" and rng.random() < 0.4:
            intent = INTENTS["followup-what-about"]
        else:
            intent = _choice(rng, [i for i in BY_KIND["template"] if not i.held])
        return _turn(intent, _choice(rng, intent.seen_wordings), _choice(rng, HELD_OUT_TOPICS), {}, anchor,
                     ("topic",))
    if holdout == "offdomain":
        intent = _choice(rng, BY_KIND["offdomain"])
        with_slots = [w for w in intent.seen_wordings if any(s != "t" for s in _slots(intent.wordings[w]))]
        if rng.random() < 0.5 or not with_slots:               # a frame never seen in training
            wording = _choice(rng, sorted(intent.held_wordings))
            return _turn(intent, wording, None, _fill_slots(rng, intent.wordings[wording]), anchor, ("frame",))
        wording = _choice(rng, with_slots)                     # a seen frame with a held-out vocabulary item
        held_slot = _choice(rng, _slots(intent.wordings[wording]))
        return _turn(intent, wording, None, _fill_slots(rng, intent.wordings[wording], held_slot), anchor,
                     ("vocabulary",))
    raise ValueError(f"unknown holdout {holdout!r}; choose from {HOLDOUTS}")


def draw_dialogue(rng: np.random.Generator, num_turns: int, holdout: str | None = None) -> tuple[WorldTurn, ...]:
    """A coherent dialogue of ``num_turns`` turns (1..12 in the corpus).

    Topics carry across turns (a template turn keeps the dialogue's topic with probability
    :data:`TOPIC_PERSISTENCE`; follow-ups answer about the anchor's topic), openers come where they are usual
    (greetings first, thanks and goodbye last), follow-ups refer to the turn before. Every turn is drawn from the
    seen world, except, when ``holdout`` is one of "template", "wording", "topic", "offdomain", the last one, which
    carries that held-out part (a test sample). ``holdout`` None or "voice": all seen (training, validation, and
    held-out-voice test samples)."""
    if num_turns < 1:
        raise ValueError("a dialogue has at least one turn")
    if holdout not in (None,) + HOLDOUTS:
        raise ValueError(f"unknown holdout {holdout!r}; choose from {HOLDOUTS}")
    turns: list[WorldTurn] = []
    anchor: Anchor | None = None
    for k in range(num_turns):
        prev = turns[-1] if turns else None
        if k == num_turns - 1 and holdout not in (None, "voice"):
            turn = _draw_held(rng, holdout, anchor)
        else:
            for _ in range(8):                                 # do not ask the very same thing twice in a row
                turn = _draw_free(rng, k, num_turns, anchor, prev)
                if prev is None or turn.question != prev.question:
                    break
        turns.append(turn)
        anchor = turn.anchor
    return tuple(turns)


def world_counts() -> dict[str, object]:
    """Counts for docs/DATA.md: intents and wordings per kind, held-out parts."""
    out: dict[str, object] = {}
    for k in KINDS:
        intents = BY_KIND[k]
        out[k] = {"intents": len(intents), "wordings": sum(len(i.wordings) for i in intents),
                  "held_out_wordings": sum(len(i.held_wordings) for i in intents)}
    out["held_out_templates"] = sum(t.holdout for t in TEMPLATES)
    out["topics"], out["held_out_topics"] = len(TOPICS), len(HELD_OUT_TOPICS)
    out["vocabulary"] = {n: (len(xs), len(HELD_OUT_VOCABULARY[n])) for n, xs in VOCABULARY.items()}
    out["answers"] = len(answer_inventory())
    return out



def draw_test_dialogue(rng: np.random.Generator, num_turns: int, held_share: float = 0.5,
                       holdouts: Sequence[str] = ("wording", "topic", "offdomain")) -> tuple[WorldTurn, ...]:
    """A dialogue for evaluation in which any turn, not only the last, may carry held-out material: each turn is,
    with probability ``held_share``, drawn with one of ``holdouts`` (a held-out wording, topic or off-domain
    question), else from the seen world; topics and follow-ups carry across turns as in :func:`draw_dialogue`."""
    if num_turns < 1:
        raise ValueError("a dialogue has at least one turn")
    unknown = set(holdouts) - set(HOLDOUTS)
    if unknown:
        raise ValueError(f"unknown holdouts {sorted(unknown)}; choose from {HOLDOUTS}")
    turns: list[WorldTurn] = []
    anchor: Anchor | None = None
    for k in range(num_turns):
        prev = turns[-1] if turns else None
        for _ in range(8):
            if holdouts and rng.random() < held_share:
                turn = _draw_held(rng, _choice(rng, list(holdouts)), anchor)
            else:
                turn = _draw_free(rng, k, num_turns, anchor, prev)
            if prev is None or turn.question != prev.question:
                break
        turns.append(turn)
        anchor = turn.anchor
    return tuple(turns)


def is_fallback(text: str) -> bool:
    """Whether ``text`` is one of the off-domain fallback answers (case, punctuation and spacing ignored)."""
    return normalise(text) in {normalise(a) for a, _ in FALLBACKS.values()}
