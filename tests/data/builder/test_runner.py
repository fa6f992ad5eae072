"""The runner: resume after a crash (raised and SIGKILLed), failures, retries, limits, requirements, shards."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from a2llm.data.builder import ItemError, Manifest, Stage, StageFailed, run_stage
from a2llm.data.builder.files import atomic_write_bytes
from a2llm.data.builder.manifest import Record

from .helpers import make_wav, seed

REPO = Path(__file__).resolve().parents[3]


def _manifest(tmp_path, n=6):
    for i in range(n):
        make_wav(tmp_path / "raw" / f"u{i}.wav", seconds=0.1)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    return manifest


def _payload(item: str) -> bytes:
    return (item * 500).encode()


class Echo(Stage):
    """Writes a payload derived from the id and counts calls; fails the ids in ``bad``."""

    name = "echo"

    def __init__(self, bad=()):
        self.calls: Counter[str] = Counter()
        self.loads = 0
        self.bad = set(bad)

    def load(self):
        self.loads += 1

    def process(self, record: Record, workdir: Path) -> dict:
        self.calls[record.id] += 1
        if record.id in self.bad:
            raise ItemError("bad item", {"why": "listed"})
        path = atomic_write_bytes(workdir / "out.bin", _payload(record.id))
        return {"out": record.relpath(path), "n": self.calls[record.id]}


def _check_artefacts(manifest):
    for r in manifest.records(["echo"]):
        assert r.status("echo") == "done"
        assert r.path(r.output("echo")["out"]).read_bytes() == _payload(r.id)
        leftovers = [p.name for p in manifest.stage_dir(r.id, "echo").iterdir() if p.name != "out.bin"]
        assert leftovers == []


def test_resume_after_a_crash_does_not_redo_finished_items(tmp_path):
    manifest = _manifest(tmp_path)
    ids = [it.id for it in manifest.items]
    stage = Echo()
    seen = []

    def crash_after_three(result):
        seen.append(result.id)
        if len(seen) == 3:
            raise KeyboardInterrupt("simulated crash")  # BaseException: nothing catches it, like a kill

    with pytest.raises(KeyboardInterrupt):
        run_stage(manifest, stage, progress=False, on_result=crash_after_three)
    assert seen == ids[:3]
    assert set(Manifest(manifest.root).results("echo")) == set(ids[:3])

    summary = run_stage(Manifest(manifest.root), stage, progress=False)
    assert (summary.processed, summary.already_done, summary.done) == (3, 3, 3)
    assert all(stage.calls[i] == 1 for i in ids)  # the first three were not processed again
    _check_artefacts(Manifest(manifest.root))
    assert run_stage(Manifest(manifest.root), stage, progress=False).processed == 0


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from a2llm.data.builder import Manifest, Stage, run_stage
    from a2llm.data.builder.files import atomic_write

    root, kill_at = Path(sys.argv[1]), int(sys.argv[2])

    class Echo(Stage):
        name = "echo"
        count = 0

        def process(self, record, workdir):
            Echo.count += 1
            with open(root / "calls.txt", "a") as f:
                f.write(record.id + "\\n")
            payload = (record.id * 500).encode()

            def write(f):
                f.write(payload[: len(payload) // 2])
                if Echo.count == kill_at:  # die mid-artefact: half a temp file on disk, no log line
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                f.write(payload[len(payload) // 2:])

            path = atomic_write(workdir / "out.bin", write)
            return {"out": record.relpath(path)}

    run_stage(Manifest(root), Echo(), progress=False)
""")


def test_resume_after_sigkill_mid_artefact(tmp_path):
    manifest = _manifest(tmp_path)
    ids = [it.id for it in manifest.items]
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), str(manifest.root), "4"], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert set(Manifest(manifest.root).results("echo")) == set(ids[:3])
    stale = list(manifest.stage_dir(ids[3], "echo").glob(".out.bin.*.tmp"))
    assert len(stale) == 1 and not (manifest.stage_dir(ids[3], "echo") / "out.bin").exists()

    stage = Echo()
    summary = run_stage(Manifest(manifest.root), stage, progress=False)
    assert summary.processed == 3 and summary.already_done == 3
    assert sorted(stage.calls) == sorted(ids[3:])  # only the killed item and the ones after it
    calls = (manifest.root / "calls.txt").read_text().split()
    assert calls == ids[:4]  # the killed process got as far as item 4
    _check_artefacts(Manifest(manifest.root))  # the half temp file was swept, every artefact whole


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    manifest = _manifest(tmp_path, 4)
    ids = [it.id for it in manifest.items]
    stage = Echo(bad={ids[1]})
    summary = run_stage(manifest, stage, progress=False)
    assert (summary.done, summary.failed) == (3, 1)
    failed = manifest.results("echo")[ids[1]]
    assert failed.status == "failed" and failed.error == "ItemError: bad item" and failed.output == {"why": "listed"}

    again = run_stage(manifest, stage, progress=False)
    assert (again.processed, again.skipped_failed) == (0, 1)

    stage.bad.clear()
    retried = run_stage(manifest, stage, progress=False, retry_failed=True)
    assert retried.processed == 1 and manifest.results("echo")[ids[1]].status == "done"
    assert stage.calls[ids[1]] == 2 and stage.calls[ids[0]] == 1


def test_unexpected_exceptions_and_bad_outputs_fail_the_item_only(tmp_path):
    manifest = _manifest(tmp_path, 3)
    ids = [it.id for it in manifest.items]

    class Quirky(Stage):
        name = "quirky"

        def process(self, record, workdir):
            if record.id == ids[0]:
                raise ZeroDivisionError("boom")
            if record.id == ids[1]:
                return {"obj": object()}  # not JSON-serialisable
            raise ItemError("odd details", {"obj": {1, 2}})  # a set: not JSON either

    summary = run_stage(manifest, Quirky(), progress=False)
    assert (summary.done, summary.failed) == (0, 3)
    assert manifest.results("quirky")[ids[2]].output == {"details_repr": "{'obj': {1, 2}}"}
    res = manifest.results("quirky")
    assert res[ids[0]].error == "ZeroDivisionError: boom" and "ZeroDivisionError" in res[ids[0]].output["traceback"]
    assert "not JSON-serialisable" in res[ids[1]].error


def test_fail_fast_stops_after_recording_the_failure(tmp_path):
    manifest = _manifest(tmp_path, 4)
    ids = [it.id for it in manifest.items]
    stage = Echo(bad={ids[1]})
    with pytest.raises(StageFailed, match=f"failed on item {ids[1]}"):
        run_stage(manifest, stage, progress=False, fail_fast=True)
    assert set(manifest.results("echo")) == set(ids[:2])


def test_limit_requirements_and_shards(tmp_path):
    manifest = _manifest(tmp_path, 6)
    ids = [it.id for it in manifest.items]

    class Needy(Echo):
        name = "needy"
        requires = ("echo",)

    seed(manifest, "echo", {i: {} for i in ids[:4]})
    needy = Needy()
    first = run_stage(manifest, needy, progress=False, limit=1)
    assert (first.processed, first.remaining, first.blocked) == (1, 3, 2)
    assert list(needy.calls) == ids[:1]  # manifest order
    rest = run_stage(manifest, needy, progress=False)
    assert (rest.processed, rest.already_done, rest.blocked) == (3, 1, 2)
    assert sorted(needy.calls) == sorted(ids[:4])  # the two without echo stay blocked

    sharded = Echo()
    s0 = run_stage(manifest, sharded, progress=False, shard=(0, 2), retry_failed=True)
    s1 = run_stage(manifest, sharded, progress=False, shard=(1, 2))
    assert s0.processed + s1.processed == 2  # the seeded four are done; the two others split by position
    assert set(Manifest(manifest.root).results("echo")) == set(ids)


def test_load_is_called_once_and_only_when_there_is_work(tmp_path):
    manifest = _manifest(tmp_path, 2)
    stage = Echo()
    run_stage(manifest, stage, progress=False)
    run_stage(manifest, stage, progress=False)
    assert stage.loads == 1
