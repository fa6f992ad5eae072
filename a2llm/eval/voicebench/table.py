"""Table 2 of the seed: one row per model, one column per OpenAudioBench subset, and their average (0-100)."""
from __future__ import annotations

import json

from a2llm.eval.voicebench.layout import SUBSETS
from a2llm.eval.voicebench.runner import ModelResult


#: How a judged "score" subset's verdicts map to 0-100.
SCALES = {"alpaca_eval": "mean rating 1-10 x 10", "reasoning_qa": "mean grade 1-5 x 20"}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(results: list[ModelResult]) -> str:
    """Table 2 as aligned text, with a note per subset on how it was scored, on how many items."""
    subsets = [s for s in SUBSETS if any(s in r.subsets for r in results)]
    head = ["Model"] + [SUBSETS[s].title for s in subsets] + ["Avg."]
    rows = [[r.model] + [_cell(r.subsets[s].score) if s in r.subsets else "" for s in subsets] + [_cell(r.average)]
            for r in results]
    widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = ["Table 2: language capability on OpenAudioBench (spoken question -> text answer), 0-100",
           line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    out.append("")
    for r in results:
        notes = []
        for s in subsets:
            if s in r.subsets:
                x = r.subsets[s]
                metric = SCALES.get(s, "% correct")
                how = f"{x.scoring}, {metric}" if x.scoring else "not scored"
                notes.append(f"{SUBSETS[s].title}: n={x.n}, {how}" + (f", {x.invalid} unparsable verdicts left out"
                                                                    if x.invalid else ""))
        out.append(f"{r.model}: " + "; ".join(notes))
    return "\n".join(out)


def to_json(results: list[ModelResult]) -> str:
    """The table's content as JSON: {"benchmark", "columns", "rows": [ModelResult.as_dict()]}."""
    subsets = [s for s in SUBSETS if any(s in r.subsets for r in results)]
    return json.dumps({"benchmark": "OpenAudioBench", "table": 2, "columns": subsets,
                       "rows": [r.as_dict() for r in results]}, indent=2, ensure_ascii=False)
