"""Stages and the runner that applies one stage to the pending items of a manifest.

A stage is a small object with a ``name``, the names of the stages it ``requires`` (done for an item before it
may run on it), an optional ``load()`` for heavy setup (models), called once and only when there is work, and
``process(record, workdir) -> dict``, which writes its artefacts into ``workdir`` (atomically) and returns the
item's output metadata. The runner owns everything else: which items are pending, progress, recording each
result durably, and turning a per-item exception into a "failed" line instead of a dead run.
"""
from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from a2llm.data.builder.files import remove_stale_temps
from a2llm.data.builder.manifest import Manifest, Record, StageResult, encode_result


class ItemError(Exception):
    """A stage could not process one item; ``details`` is stored with the failure (e.g. a model's raw output).

    Args:
        message: what went wrong, for the ``error`` field.
        details: JSON-serialisable facts that help debug it.
    """

    def __init__(self, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.details = dict(details or {})


class StageFailed(RuntimeError):
    """Raised by the runner with ``fail_fast`` when an item fails (after recording the failure)."""


class Stage:
    """Base class of the builder's stages.

    Subclasses set ``name`` and ``requires`` and implement :meth:`process`.
    """

    name: ClassVar[str] = ""
    requires: tuple[str, ...] = ()

    def load(self) -> None:
        """Load models or check tools. Called once per run, before the first item, only if any is pending.

        Raising here stops the run before any item is touched (e.g. SMIRK not installed).
        """

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        """Process one item.

        Args:
            record: the item with the outputs of the stages done so far.
            workdir: this stage's artefact folder for the item (created, empty of stale temporaries).

        Returns:
            JSON-serialisable output metadata; artefact paths relative to the manifest folder
            (:meth:`Record.relpath`).

        Raises:
            ItemError: (or any Exception) the item failed; the runner records it and goes on.
        """
        raise NotImplementedError


@dataclass
class RunSummary:
    """What one :func:`run_stage` call did.

    Attributes:
        stage: the stage name.
        processed: items attempted in this run.
        done: of those, how many succeeded.
        failed: of those, how many failed.
        already_done: items skipped because they were done before this run.
        skipped_failed: items skipped because they failed before (use ``retry_failed``).
        blocked: items skipped because a required stage is not done for them.
        remaining: pending items left for a later run (``limit``).
    """

    stage: str
    processed: int = 0
    done: int = 0
    failed: int = 0
    already_done: int = 0
    skipped_failed: int = 0
    blocked: int = 0
    remaining: int = 0

    def line(self) -> str:
        return (f"{self.stage}: processed {self.processed} (done {self.done}, failed {self.failed}); "
                f"already done {self.already_done}, earlier failures skipped {self.skipped_failed}, "
                f"blocked {self.blocked}, left for later {self.remaining}")


def in_shard(index: int, shard: tuple[int, int]) -> bool:
    """Whether the item at manifest position ``index`` belongs to ``shard`` = (i, n): round-robin."""
    return index % shard[1] == shard[0]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard {text!r}: need N >= 1 and 0 <= I < N")
    return i, n


def _failure(record: Record, stage: Stage, exc: Exception, started: float) -> StageResult:
    details = dict(exc.details) if isinstance(exc, ItemError) else {}
    if not isinstance(exc, ItemError):  # unexpected: keep where it happened
        details["traceback"] = "".join(traceback.format_exception(exc)[-6:])
    result = StageResult(id=record.id, stage=stage.name, status="failed", output=details,
                         error=f"{type(exc).__name__}: {exc}", time=time.time(), seconds=time.time() - started)
    try:
        encode_result(result)
    except (TypeError, ValueError):  # details the log cannot hold must not crash the run: keep their repr
        result = dataclasses.replace(result, output={"details_repr": repr(details)[:2000]})
    return result


def _attempt(record: Record, stage: Stage, workdir: Path) -> StageResult:
    """Run ``stage`` on one item and return its result (never raises for an Exception of the stage)."""
    started = time.time()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(workdir)
        output = stage.process(record, workdir)
        if not isinstance(output, dict):
            raise TypeError(f"stage {stage.name!r} returned {type(output).__name__}; process() must return a dict")
        result = StageResult(id=record.id, stage=stage.name, status="done", output=output, time=time.time(),
                             seconds=time.time() - started)
        encode_result(result)  # fail the item now, not the log, if the output is not JSON-serialisable
        return result
    except Exception as exc:  # noqa: BLE001 - one bad item must not end a run over thousands
        return _failure(record, stage, exc, started)


def run_stage(manifest: Manifest, stage: Stage, *, limit: int | None = None, retry_failed: bool = False,
              fail_fast: bool = False, shard: tuple[int, int] = (0, 1), progress: bool = True,
              on_result: Callable[[StageResult], None] | None = None) -> RunSummary:
    """Apply ``stage`` to every pending item of ``manifest`` (resumable).

    Each result is appended to the stage log and fsynced before the next item starts, so after a crash a
    rerun goes on from the first item without a result; the item in progress at the crash is redone (its
    stale temporary files are removed first, finished artefacts are overwritten atomically).

    Args:
        manifest: the manifest.
        stage: the stage to run.
        limit: process at most this many items in this run.
        retry_failed: also process items whose last attempt failed.
        fail_fast: raise :class:`StageFailed` at the first failure (after recording it).
        shard: (i, n): only items at manifest positions p with p % n == i.
        progress: show a tqdm bar.
        on_result: called with each result after it is durably recorded (progress hooks, fault injection).

    Returns:
        A :class:`RunSummary`.

    Raises:
        StageBusyError: another process runs this stage (or shard) on this manifest.
        StageFailed: with ``fail_fast``, the first failure.
    """
    summary = RunSummary(stage=stage.name)
    # The lock is taken before the logs are read, so the pending list cannot go stale under another runner.
    with manifest.open_log(stage.name, shard) as log:
        todo = _pending(manifest, stage, shard, retry_failed, summary)
        if limit is not None:
            summary.remaining = max(0, len(todo) - limit)
            todo = todo[:limit]
        if not todo:
            return summary
        stage.load()
        bar = _progress(len(todo), stage.name, progress)
        try:
            for record in todo:
                result = _attempt(record, stage, manifest.stage_dir(record.id, stage.name))
                log.append(result)
                summary.processed += 1
                if result.status == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                bar.update(1)
                bar.set_postfix(failed=summary.failed, refresh=False)
                if on_result is not None:
                    on_result(result)
                if fail_fast and result.status == "failed":
                    raise StageFailed(f"stage {stage.name!r} failed on item {record.id}: {result.error}")
        finally:
            bar.close()
    return summary


def _pending(manifest: Manifest, stage: Stage, shard: tuple[int, int], retry_failed: bool,
             summary: RunSummary) -> list[Record]:
    """The shard's items that ``stage`` should process, in manifest order; counts the others in ``summary``."""
    todo: list[Record] = []
    for position, record in enumerate(manifest.records([stage.name, *stage.requires])):
        if not in_shard(position, shard):
            continue
        status = record.status(stage.name)
        if status == "done":
            summary.already_done += 1
        elif status == "failed" and not retry_failed:
            summary.skipped_failed += 1
        elif any(record.status(req) != "done" for req in stage.requires):
            summary.blocked += 1
        else:
            todo.append(record)
    return todo


def _progress(total: int, name: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="item", disable=not enabled, dynamic_ncols=True)
