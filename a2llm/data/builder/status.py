"""Per-stage counts of a manifest: done, failed, pending (ready to run), blocked (a requirement not done)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from a2llm.data.builder.manifest import Manifest
from a2llm.data.builder.runner import Stage


@dataclass
class StageCounts:
    """How the items of a manifest stand at one stage.

    Attributes:
        stage: the stage name.
        done, failed, pending, blocked: item counts (they sum to the number of items).
        passed: for the filter stage, how many done items passed (else None).
        errors: most common failure messages (first line) -> count.
    """

    stage: str
    done: int = 0
    failed: int = 0
    pending: int = 0
    blocked: int = 0
    passed: int | None = None
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stage_counts(manifest: Manifest, stages: list[Stage], top_errors: int = 3) -> list[StageCounts]:
    """Count every item's status at each of ``stages``."""
    names = {s.name for s in stages} | {r for s in stages for r in s.requires}
    records = manifest.records(sorted(names))
    out: list[StageCounts] = []
    for stage in stages:
        counts = StageCounts(stage=stage.name)
        errors: Counter[str] = Counter()
        for r in records:
            status = r.status(stage.name)
            if status == "done":
                counts.done += 1
                if stage.name == "filter":
                    counts.passed = (counts.passed or 0) + bool(r.output("filter").get("passed"))
            elif status == "failed":
                counts.failed += 1
                message = r.results[stage.name].error or "(no message)"
                errors[message.splitlines()[0][:120]] += 1
            elif all(r.status(req) == "done" for req in stage.requires):
                counts.pending += 1
            else:
                counts.blocked += 1
        counts.errors = dict(errors.most_common(top_errors))
        out.append(counts)
    return out


def format_counts(counts: list[StageCounts], num_items: int) -> str:
    """A fixed-width table of :func:`stage_counts`, with the commonest errors under it."""
    lines = [f"{num_items} items", f"{'stage':<10}{'done':>8}{'failed':>8}{'pending':>9}{'blocked':>9}"]
    for c in counts:
        extra = f"   passed {c.passed}, rejected {c.done - c.passed}" if c.passed is not None else ""
        lines.append(f"{c.stage:<10}{c.done:>8}{c.failed:>8}{c.pending:>9}{c.blocked:>9}{extra}")
    for c in counts:
        for message, n in c.errors.items():
            lines.append(f"  {c.stage} failures x{n}: {message}")
    return "\n".join(lines)
