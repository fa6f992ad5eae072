"""Scoring OpenAudioBench answers: the release's judge rubrics, parsing verdicts, a matching rule, subset scores.

The release scores every subset with a judge model (GPT-4o), one rubric per subset; each rubric fixes what the
judge must write at the end, and that is parsed here:

==================  ===============================================  ===========================  ============
subset              the judge is asked for                           parsed                       item score
==================  ===============================================  ===========================  ============
alpaca_eval         a 1-10 quality rating of the open answer         last ``[[n]]``               10 n
llama_questions     correct / incorrect against the reference        "the score is [Correct]"     100 or 0
reasoning_qa        a 1-5 grade (answer and working) vs reference    last ``[n]``                 20 n
trivia_qa           JSON ``{"analysis", "judgment"}``: does the      "judgment": correct          100 or 0
web_questions       answer carry one of the reference answers?
==================  ===============================================  ===========================  ============

A subset's score is the mean item score over the items whose verdict could be parsed (0-100); unparsable
verdicts are counted as ``invalid`` and left out, as the Kimi-Audio evaluation kit's port of the release does.
The prompts below are written for this project: they carry the release's criteria, scales and answer formats,
not its wording (the Reasoning QA rubric is in Chinese in the release, in English here).

``--qa-scoring match`` scores the three short-answer subsets without a judge instead: an answer is correct when,
after normalisation (lower case, no punctuation, no articles), one reference answer's words appear in it as a
contiguous run — the "has answer" rule of open-domain QA (DPR), which UltraEval-Audio calls exist-match. That is
not the release's protocol; the table says which was used.
"""
from __future__ import annotations

import ast
import json
import re
import string
from dataclasses import dataclass

from a2llm.eval.voicebench.judges import Judge, JudgeNotConfigured
from a2llm.eval.voicebench.layout import SUBSETS, Item

PROMPTS = {
    "alpaca_eval": """You are an impartial judge. Assess the quality of the AI assistant's response to the user's \
question shown below, weighing its helpfulness, relevance, accuracy, depth, creativity and level of detail. Start \
with a brief, objective explanation. Then give your rating on a scale of 1 to 10, written exactly in the form \
"[[rating]]", for example "Rating: [[5]]".

[Question]
{question}

[Assistant's answer begins]
{answer}
[Assistant's answer ends]""",

    "llama_questions": """You grade answers to general-knowledge questions. Decide whether the model's answer is \
correct, using the standard answer.

Correct: the answer matches the standard answer or is equivalent to it.
Incorrect: the answer is wrong, or does not address the question.

Be flexible about form: a number may be written in digits or in words, a name may be given in English or in \
Chinese, punctuation does not matter. Judge only whether the core meaning is right.

Explain your reasoning briefly, then finish with exactly "the score is [Correct]" or "the score is [Incorrect]".

Question: {question}
Standard answer: {reference}
Model's answer: {answer}""",

    "reasoning_qa": """You are a university mathematics teacher. Grade the student's answer to the problem below \
against the standard answer:

5 - correct answer, correct working, and every possible case considered;
4 - correct answer, but no working shown;
3 - wrong answer with mostly correct working, or a correct answer with clearly wrong working;
2 - wrong answer and mostly wrong working;
1 - wrong answer, with working and approach entirely wrong.

Ignore matters of form; these count as the same: a formula in LaTeX or in plain text; a fraction or its decimal \
value (1/3 and 0.33); pi written as π, pi or 3.14; constants under different names (n, k); and similar \
equivalent notations.

Give the reasons for your grade, then write the grade in square brackets, for example "the grade is [4]".

Problem: {question}
Standard answer: {reference}
Student's answer: {answer}""",

    "trivia_qa": """You will be given a question, the reference answers to it, and an answer to judge. Decide \
whether the answer to judge is correct: it is correct when it expresses or contains the meaning of at least one of \
the reference answers; its format and tone do not matter.
Reply in JSON: first a one-sentence analysis in the field "analysis", then your verdict, "correct" or \
"incorrect", in the field "judgment". For example:
{{"analysis": "<one sentence>", "judgment": "correct"}}

Question: {question}
Reference answers: {reference}
Answer to judge: {answer}""",
}
PROMPTS["web_questions"] = PROMPTS["trivia_qa"]

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_GRADE = re.compile(r"\[\s*([0-5])\s*\]")
_CORRECT = re.compile(r"the score is \[\s*(correct|incorrect)\s*\]", re.IGNORECASE)
_JUDGMENT = re.compile(r"[\"']judgment[\"']\s*:\s*[\"']?\s*(correct|incorrect)", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    """One item's verdict: ``score`` 0-100 (None: the verdict could not be parsed) and the judge's raw reply."""

    score: float | None
    raw: str


def judge_prompt(item: Item, answer: str) -> str:
    """The rubric for ``item``'s subset, filled with the question, the reference and the model's answer."""
    return PROMPTS[item.subset].format(question=item.question, reference=item.reference, answer=answer)


def parse_verdict(subset: str, reply: str) -> float | None:
    """The 0-100 item score a judge's reply gives, or None when the reply has no verdict in the rubric's form."""
    if subset == "alpaca_eval":
        found = _RATING.findall(reply)
        value = float(found[-1]) if found else None
        return 10.0 * value if value is not None and 1 <= value <= 10 else None
    if subset == "reasoning_qa":
        found = _GRADE.findall(reply)
        return 20.0 * int(found[-1]) if found else None
    if subset == "llama_questions":
        found = _CORRECT.findall(reply)
        return (100.0 if found[-1].lower() == "correct" else 0.0) if found else None
    if subset in ("trivia_qa", "web_questions"):
        verdict = _json_judgment(reply)
        return None if verdict is None else (100.0 if verdict == "correct" else 0.0)
    raise ValueError(f"unknown subset {subset!r}")


def _json_judgment(reply: str) -> str | None:
    """"correct" / "incorrect" from the JSON object in ``reply`` (code fences and single quotes tolerated)."""
    start, end = reply.find("{"), reply.rfind("}")
    if 0 <= start < end:
        blob = reply[start:end + 1]
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(blob)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, dict) and isinstance(value.get("judgment"), str):
                verdict = value["judgment"].strip().lower()
                return verdict if verdict in ("correct", "incorrect") else None
    found = _JUDGMENT.findall(reply)
    return found[-1].lower() if found else None


# ---------------------------------------------------------------------------------------------- matching rule
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—"})


def normalize(text: str) -> list[str]:
    """Words of ``text`` for matching: lower case, punctuation and articles removed."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split()


def references(item: Item) -> list[str]:
    """Every accepted answer of a short-answer item: a list literal (``['a', 'b']``) or ``;``-separated text in the
    reference column, plus the subset's extra reference columns."""
    texts = [item.reference] + [item.row.get(c) or "" for c in SUBSETS[item.subset].extra_references]
    out: list[str] = []
    for text in texts:
        text = text.strip()
        if not text:
            continue
        values = None
        if text.startswith("[") and text.endswith("]"):
            for parse in (json.loads, ast.literal_eval):
                try:
                    parsed = parse(text)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    continue
                if isinstance(parsed, (list, tuple)):
                    values = [str(v) for v in parsed]
                    break
        if values is None:
            values = text.split(";") if ";" in text else [text]
        out += [v.strip() for v in values if v.strip() and v.strip() not in out]
    return out


def matches(answer: str, refs: list[str]) -> bool:
    """True when one reference's normalised words occur, contiguously, among the answer's."""
    words = normalize(answer)
    for ref in refs:
        target = normalize(ref)
        n = len(target)
        if n and any(words[i:i + n] == target for i in range(len(words) - n + 1)):
            return True
    return False


# ---------------------------------------------------------------------------------------------- the scorer
class Scorer:
    """Scores answers subset by subset: with ``judge`` (the release's protocol), or with the matching rule for the
    short-answer subsets when ``qa_scoring == "match"``.

    ``tag`` names the scoring (it keys the judgement cache, so switching judges never mixes verdicts)."""

    def __init__(self, judge: Judge | None = None, qa_scoring: str = "judge"):
        if qa_scoring not in ("judge", "match"):
            raise ValueError("qa_scoring must be 'judge' or 'match'")
        self.judge, self.qa_scoring = judge, qa_scoring

    def method(self, subset: str) -> str:
        """"match" or "judge" for ``subset``."""
        return "match" if self.qa_scoring == "match" and SUBSETS[subset].matchable else "judge"

    def tag(self, subset: str) -> str:
        """The scoring's name for ``subset``: "match", or the judge's name."""
        if self.method(subset) == "match":
            return "match"
        return self.judge.name if self.judge is not None else "none"

    def check(self, subsets) -> None:
        """JudgeNotConfigured when some of ``subsets`` need a judge and there is none."""
        needy = [s for s in subsets if self.method(s) == "judge"]
        if needy and self.judge is None:
            matchable = [s for s in needy if SUBSETS[s].matchable]
            hint = (f"; {', '.join(matchable)} can use the matching rule instead (--qa-scoring match)"
                    if matchable else "")
            raise JudgeNotConfigured(
                f"{', '.join(needy)} {'is' if len(needy) == 1 else 'are'} scored by a judge model and none is set: "
                "pass --judge openai (key in $OPENAI_API_KEY, or --judge-url for an OpenAI-compatible server) or "
                "--judge hf --judge-model NAME (or set $A2LLM_JUDGE), leave the subset out with --subsets, or "
                f"only collect answers with --answers-only{hint}")

    def score(self, item: Item, answer: str) -> Judgement:
        """One item's judgement."""
        if self.method(item.subset) == "match":
            refs = references(item)
            return Judgement(100.0 if matches(answer, refs) else 0.0, "match: " + " | ".join(refs))
        self.check([item.subset])
        reply = self.judge.complete(judge_prompt(item, answer))
        return Judgement(parse_verdict(item.subset, reply), reply)


def subset_score(scores: list[float | None]) -> tuple[float | None, int]:
    """(mean over parsed verdicts or None when there is none, count of unparsable verdicts)."""
    valid = [s for s in scores if s is not None]
    return (sum(valid) / len(valid) if valid else None), len(scores) - len(valid)
