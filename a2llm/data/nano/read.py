"""FLAME-QA-nano-read: read-aloud sentences that teach nano to read text it has never heard.

FLAME-QA-nano's answers are 24 templates × 12 topics: a model trained on them alone memorises the sentences
and, given a new one to read, continues a memorised one (docs/NANO.md). This corpus holds random word
sequences — no template, nothing to memorise — over two vocabularies, each word drawn from either with even
odds: the *core* (the training templates' words plus a list of common words written here; the BPE keeps each
of these one token) and a *general* one, the 5,000 most frequent English words (``english_words.txt``, from
wordfreq), most of which the BPE splits into pieces, so that the model learns to read words it knows only
as pieces (a word no corpus holds comes to it that way). Each sample is the sentence spoken twice: by a training voice
with noise (``question_audio``, for ASR) and by the answer voice with its 25 Hz phone tokens
(``response_audio``, for TTS and Repeat), with procedural neutral motion. The curriculum mixes a share of these
into pre-training batches (``StageConfig.read_share``).

The vocabularies are general, so they also hold words of the held-out templates (docs/NANO.md says which);
the held-out *sentences* never occur here.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from a2llm.data.format import FlameQASample
from a2llm.data.nano.generate import (SAMPLE_RATE, TRAIN_VOICES, NanoConfig, _segments,
                                      _word_times, answer_words, spoken_answer, spoken_question,
                                      write_samples)
from a2llm.data.nano.templates import CONTEXT_TURNS, HELD_OUT_TOPICS, TEMPLATES, TRAIN_TOPICS

COMMON_WORDS = """
a about above across after again against ago air all almost alone along already also always am among an and
animal another answer any anyone anything are area arm around art as ask at away baby back bad bag ball bank
be beautiful because bed been before began begin behind being believe below best better between big bird
black blue boat body book both box boy bread break bright bring brother brown build bus busy but buy by call
came can car card care carry case cat catch chair change child children city class clean clear close cloud
coffee cold colour come common cook cool could country course cup cut dark day dear deep did different dinner
do doctor does dog done door down draw dream drink drive dry during each early earth easy eat egg eight end
enough even evening ever every eye face fact fall family far farm fast father feel feet few field fill find
fine fire first fish five floor flower fly follow food foot for forest forget found four free friday friend
from front fruit full game garden gave get girl give glad glass go gold good got great green ground group grow
had half hand happen hard has hat have he head hear heart heavy help her here high hill him his hold home hope
horse hot hour house how hundred i idea if in inside into is it its job just keep kind king kitchen knew know
lake land language large last late laugh learn leave left leg less let letter light like line list listen
little live long look lost lot loud love low made make man many map market may me mean meet men might mile
milk mind minute minutes miss moment monday money month moon more morning most mother mountain mouth move much
music must my name near need never new next nice night nine no noise north not nothing now number of off
office often oil old on once one only open or orange order other our out over own page paper park part pass
past pay people perhaps person picture piece place plan planned plant play please point poor power problem
pull push put question quick quiet rain read ready red rest right river road rock room round run sad safe said
same saturday saw say school sea second see seem sell send seven shall she ship shoe shop short should show
side simple sing sister sit six sky sleep slow small smile snow so some something song soon sound south speak
special spring stand star start station stay still stone stop story street strong student study summer sun
sunday sure table take talk tall tea teacher tell ten than thank that the their them then there these they
thing think third this those thought three through thursday time to today together told tomorrow too took top
town train travel tree true try tuesday turn two under until up us use very village visit voice wait walk wall
want warm was watch water way we wednesday week well went were west what when where which while white who
whole why wide will wind window winter with without woman wood word work world would write year yellow yes
yesterday you young your
""".split()


@lru_cache(maxsize=1)
def read_vocabulary() -> tuple[str, ...]:
    """The common words plus every word of the training templates and topics, the world's seen wordings (slots
    removed) and every answer it gives (lower case, sorted; built once per process: every sample draws from it).
    Held-out topics and held-out wordings stay out: they must reach no training row."""
    from a2llm.data.nano.world import INTENTS, answer_inventory

    texts = [" ".join(t.fill(top)) for t in TEMPLATES if not t.holdout for top in TRAIN_TOPICS]
    texts += [q + " " + a for q, a in CONTEXT_TURNS]
    texts += [re.sub(r"\{[a-z0-9]+\}", " ", intent.wordings[i]) for intent in INTENTS.values()
              if not intent.held for i in intent.seen_wordings]
    held = {t.fill(top)[1] for t in TEMPLATES if t.holdout for top in TRAIN_TOPICS + HELD_OUT_TOPICS}
    texts += [a for a in answer_inventory() if a not in held and not any(top in a.lower() for top in HELD_OUT_TOPICS)]
    words = {w for text in texts for w in re.findall(r"[a-z']+", text.lower())}
    return tuple(sorted(words | set(COMMON_WORDS)))


@lru_cache(maxsize=1)
def general_vocabulary() -> tuple[str, ...]:
    """The 5,000 most frequent English words (``english_words.txt``, most frequent first)."""
    path = Path(__file__).with_name("english_words.txt")
    return tuple(w for w in path.read_text().split("\n") if w and not w.startswith("#"))


def read_sentence(rng: np.random.Generator, vocabulary: Sequence[str], words: tuple[int, int] = (3, 10),
                  general: Sequence[str] = (), general_share: float = 0.5) -> str:
    """A random sequence of ``words`` (min, max inclusive) words, capitalised and punctuated; each word comes
    from ``general`` with probability ``general_share`` (when given), else from ``vocabulary``."""
    k = int(rng.integers(words[0], words[1] + 1))
    picks = [vocabulary[int(i)] for i in rng.integers(0, len(vocabulary), k)]
    if general:
        swap = rng.random(k) < general_share
        picks = [general[int(rng.integers(len(general)))] if s else w for w, s in zip(picks, swap)]
    if rng.random() < 0.3 and k >= 6:            # a comma inside some sentences, as in the answers
        cut = int(rng.integers(2, k - 2))
        picks[cut] += ","
    text = " ".join(picks)
    text = re.sub(r"\bi\b", "I", text)
    return text[0].upper() + text[1:] + str(rng.choice([".", ".", "!", "?"]))


def make_read_sample(index: int, cfg: NanoConfig = NanoConfig()) -> FlameQASample:
    """Read-aloud sample ``index`` (deterministic for ``cfg.seed``; ids ``read-NNNNNN``)."""
    from a2llm.data.nano.motion import Style, find_cues, synthesize_motion
    from a2llm.data.phones import frame_tokens

    rng, noise_rng, motion_rng = (np.random.default_rng(s)
                                  for s in np.random.SeedSequence([cfg.seed, 7_000_000 + index]).spawn(3))
    text = read_sentence(rng, read_vocabulary(), general=general_vocabulary())
    voice = TRAIN_VOICES[rng.integers(len(TRAIN_VOICES))]
    q = spoken_question(text, voice, rng, noise_rng, cfg)
    r, audio, frames, a_rate = spoken_answer(text, rng, cfg)
    motion = synthesize_motion(_segments(r), frames, "neutral", find_cues(_word_times(r), "neutral"), Style(),
                               motion_rng)
    return FlameQASample(
        id=f"read-{index:06d}", question_text=text, question_audio=q.audio, response_text=text,
        response_audio=audio, sample_rate=SAMPLE_RATE, motion=motion, emotion="neutral",
        audio_tokens=frame_tokens(r.phonemes, frames), source="flame-qa-nano-read", split="train",
        meta={"question_voice": voice, "question_rate": q.rate, "question_pitch": q.pitch,
              "snr_db": round(q.snr_db, 2), "answer_voice": cfg.answer_voice, "answer_rate": a_rate,
              "question_phones": q.phones.tolist(), "answer_words": answer_words(r)})


def generate_read(out: str | Path, num: int, cfg: NanoConfig = NanoConfig(), workers: int = 2,
                  shard_size: int = 500, progress: bool = True) -> Path:
    """Write read-aloud samples 0..num-1 into ``out`` (continuing a partial folder); returns dataset.json."""
    return write_samples(out, num, make_read_sample, "read", "flame-qa-nano-read", cfg, workers, shard_size,
                         progress)
