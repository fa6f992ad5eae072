"""OpenAudioBench's released layout on disk: the five subsets, their CSV columns, reading items and their audio.

The release (Hugging Face dataset ``baichuan-inc/OpenAudioBench``) is a folder ``eval_datas/`` with one folder
per subset, each holding one CSV named after the subset and an ``audios/`` folder of spoken questions (MP3 in
the release; any format libsndfile reads is accepted)::

    OpenAudioBench/                       <- --data may point here ...
    └── eval_datas/                       <- ... or here
        ├── alpaca_eval/      alpaca_eval.csv      audios/alpaca_eval_0.mp3 ...
        ├── llama_questions/  llama_questions.csv  audios/...
        ├── reasoning_qa/     reasoning_qa.csv     audios/...
        ├── trivia_qa/        trivia_qa.csv        audios/...
        └── web_questions/    web_questions.csv    audios/...

Each CSV row is one question; ``audio_filename`` names its clip inside ``audios/``. The question's text and
reference answer sit in per-subset columns (:data:`SUBSETS`). Reference answers are kept as the raw CSV text,
which is what the release hands its judge (for TriviaQA and Web Questions that text lists several accepted
answers).
"""
from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
AUDIO_COLUMN = "audio_filename"
AUDIO_FOLDER = "audios"
EVAL_FOLDER = "eval_datas"


class LayoutError(FileNotFoundError):
    """The benchmark folder is missing or not in the released layout (the message says what was expected where)."""


@dataclass(frozen=True)
class Subset:
    """One OpenAudioBench subset.

    Attributes:
        name: folder and CSV stem in the release.
        title: column heading in table 2.
        question: CSV column with the question's text (what the judge is shown).
        reference: CSV column with the reference answer (None: the subset's judge uses no reference).
        metric: "score" (judge's rating rescaled to 0-100) or "acc" (% judged correct).
        matchable: a short-answer subset, which the reference-matching rule can score instead of a judge.
        extra_references: further columns whose text also counts as a reference for the matching rule.
    """

    name: str
    title: str
    question: str
    reference: str | None
    metric: str
    matchable: bool = False
    extra_references: tuple[str, ...] = ()

    def columns(self) -> tuple[str, ...]:
        """The CSV columns this harness needs."""
        return (AUDIO_COLUMN, self.question) + ((self.reference,) if self.reference else ())


#: The five subsets in table 2's column order (the question / reference columns are those of the release's CSVs).
SUBSETS: dict[str, Subset] = {s.name: s for s in (
    Subset("alpaca_eval", "AlpacaEval", question="instruction", reference=None, metric="score"),
    Subset("llama_questions", "Llama Questions", question="Questions", reference="Answer", metric="acc",
           matchable=True),
    Subset("reasoning_qa", "Reasoning QA", question="Prompt", reference="参考答案", metric="score"),
    Subset("trivia_qa", "TriviaQA", question="question", reference="answer_normalized_aliases", metric="acc",
           matchable=True, extra_references=("answer_normalized_value",)),
    Subset("web_questions", "Web Questions", question="question", reference="answers", metric="acc",
           matchable=True),
)}


@dataclass(frozen=True)
class Item:
    """One spoken question.

    Attributes:
        subset: the subset's name.
        id: its ``audio_filename`` (unique within the subset; the cache key).
        audio_path: the clip on disk.
        question: the question's text.
        reference: the reference answer's raw text ("" where the subset has none).
        row: the whole CSV row.
    """

    subset: str
    id: str
    audio_path: Path
    question: str
    reference: str
    row: dict = field(default_factory=dict, compare=False, repr=False)


def find_root(data: str | Path) -> Path:
    """The ``eval_datas`` folder, given it or the folder above it; LayoutError when neither is there."""
    data = Path(data)
    if not data.is_dir():
        raise LayoutError(f"benchmark folder {data} does not exist (expected OpenAudioBench's release: "
                          f"{data}/{EVAL_FOLDER}/<subset>/<subset>.csv; see docs/EVAL.md for where to get it)")
    if (data / EVAL_FOLDER).is_dir():
        return data / EVAL_FOLDER
    if any((data / name / f"{name}.csv").exists() for name in SUBSETS):
        return data
    raise LayoutError(f"{data} is not in OpenAudioBench's layout: expected {data}/{EVAL_FOLDER}/<subset>/<subset>.csv "
                      f"(or {data}/<subset>/<subset>.csv) with <subset> one of {', '.join(SUBSETS)}, each next to "
                      f"an {AUDIO_FOLDER}/ folder of clips; found {sorted(p.name for p in data.iterdir())[:10]}")


def load_items(data: str | Path, subset: str, limit: int | None = None) -> list[Item]:
    """The questions of one subset, in CSV order (the first ``limit`` of them), checked against the layout.

    Raises LayoutError for a missing CSV / audio folder / column / clip, ValueError for duplicate or empty ids."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}: one of {', '.join(SUBSETS)}")
    spec = SUBSETS[subset]
    folder = find_root(data) / subset
    table = folder / f"{subset}.csv"
    if not table.exists():
        raise LayoutError(f"{table} is missing: subset {subset} expects {subset}.csv and {AUDIO_FOLDER}/ in {folder}")
    if not (folder / AUDIO_FOLDER).is_dir():
        raise LayoutError(f"{folder / AUDIO_FOLDER} is missing: the clips named by {table.name}'s "
                          f"{AUDIO_COLUMN!r} column go there")
    with open(table, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in spec.columns() if c not in header]
        if missing:
            raise LayoutError(f"{table} lacks column(s) {missing} (it has {header}); subset {subset} needs "
                              f"{list(spec.columns())}")
        rows = list(itertools.islice(reader, limit))
    items, seen = [], set()
    for n, row in enumerate(rows, start=2):
        name = (row[AUDIO_COLUMN] or "").strip()
        if not name:
            raise ValueError(f"{table} line {n}: empty {AUDIO_COLUMN!r}")
        if name in seen:
            raise ValueError(f"{table} line {n}: {AUDIO_COLUMN!r} {name!r} appears twice (it is the item's id)")
        seen.add(name)
        items.append(Item(subset, name, folder / AUDIO_FOLDER / name, row[spec.question] or "",
                          (row[spec.reference] or "") if spec.reference else "", dict(row)))
    absent = [it.audio_path.name for it in items if not it.audio_path.exists()]
    if absent:
        raise LayoutError(f"{len(absent)} of {len(items)} clips of {subset} are missing from {folder / AUDIO_FOLDER} "
                          f"(first: {absent[:3]})")
    return items


def load_audio(path: str | Path) -> np.ndarray:
    """A clip as mono float32 at 16 kHz (the engine's input rate); clear errors for Git LFS pointers / bad files.

    Decoding is :func:`a2llm.data.builder.media.load_audio` (libsndfile, else ffmpeg: MP3 on any libsndfile)."""
    from a2llm.data.builder.media import MediaError
    from a2llm.data.builder.media import load_audio as load_media

    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise LayoutError(f"{path} is a Git LFS pointer, not audio: fetch the clips (git lfs pull in the dataset clone)")
    try:
        return load_media(path, SAMPLE_RATE)
    except MediaError as exc:
        raise ValueError(f"cannot read audio {path}: {exc}") from exc
