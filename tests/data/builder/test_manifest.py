"""Manifest creation, stage-log replay (including torn lines), locks and atomic writes."""
from __future__ import annotations

import json

import pytest

from a2llm.data.builder.files import atomic_write, atomic_write_bytes, remove_stale_temps
from a2llm.data.builder.manifest import (Manifest, ManifestError, StageBusyError, StageResult, item_id,
                                         log_name)

from .helpers import make_wav


def _tree(tmp_path):
    raw = tmp_path / "raw"
    make_wav(raw / "a.wav")
    make_wav(raw / "sub" / "a.wav")  # same stem in another folder: ids must still differ
    (raw / "sub" / "clip.mp4").write_bytes(b"not really a video")  # init only looks at the extension
    (raw / "notes.txt").write_text("ignored")
    (raw / ".hidden.wav").write_bytes(b"")
    return raw


def test_init_lists_media_recursively_with_unique_stable_ids(tmp_path):
    raw = _tree(tmp_path)
    manifest, added = Manifest.init(tmp_path / "m", [raw])
    assert [(it.source.relative_to(raw).as_posix(), it.kind) for it in added] == [
        ("a.wav", "audio"), ("sub/a.wav", "audio"), ("sub/clip.mp4", "video")]
    ids = [it.id for it in manifest.items]
    assert len(set(ids)) == 3 and all(i.startswith(("a-", "clip-")) for i in ids)
    assert ids[0] == item_id(raw / "a.wav")  # deterministic in the path
    lines = (tmp_path / "m" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ids


def test_init_again_adds_only_new_files(tmp_path):
    raw = _tree(tmp_path)
    Manifest.init(tmp_path / "m", [raw])
    make_wav(raw / "b.wav")
    manifest, added = Manifest.init(tmp_path / "m", [raw, raw / "a.wav"])
    assert [it.source.name for it in added] == ["b.wav"]
    assert len(manifest.items) == 4


def test_init_refuses_unknown_files_and_missing_inputs(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ManifestError, match="unsupported file type '.txt'"):
        Manifest.init(tmp_path / "m", [tmp_path / "x.txt"])
    with pytest.raises(FileNotFoundError, match="input not found"):
        Manifest.init(tmp_path / "m", [tmp_path / "nope.wav"])
    with pytest.raises(ManifestError, match="not a manifest folder"):
        Manifest(tmp_path / "elsewhere")


def _result(item, status="done", t=1.0, **output):
    return StageResult(id=item, stage="s", status=status, output=output, time=t)


def test_replay_keeps_the_newest_result_per_item(tmp_path):
    make_wav(tmp_path / "a.wav")
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "a.wav"])
    item = manifest.items[0].id
    with manifest.open_log("s") as log:
        log.append(_result(item, "failed", t=1.0))
        log.append(_result(item, "done", t=2.0, n=1))
    with manifest.open_log("s", (1, 2)) as log:  # a shard log written earlier in time must not win
        log.append(_result(item, "failed", t=1.5))
    assert manifest.results("s")[item].status == "done"
    assert manifest.records(["s"])[0].output("s") == {"n": 1}
    assert [p.name for p in manifest.log_paths("s")] == ["s.jsonl", "s.shard-1-of-2.jsonl"]
    assert log_name("s", (1, 2)) == "s.shard-1-of-2.jsonl"


def test_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path):
    make_wav(tmp_path / "a.wav")
    make_wav(tmp_path / "b.wav")
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path])
    a, b = (it.id for it in manifest.items)
    with manifest.open_log("s") as log:
        log.append(_result(a))
    path = tmp_path / "m" / "stages" / "s.jsonl"
    with open(path, "ab") as f:  # what a process killed in the middle of a write leaves
        f.write(b'{"id": "' + b.encode() + b'", "stat')
    with pytest.warns(RuntimeWarning, match="skipped 1 unreadable line"):
        assert set(manifest.results("s")) == {a}
    with manifest.open_log("s") as log:
        log.append(_result(b))
    with pytest.warns(RuntimeWarning):
        assert set(manifest.results("s")) == {a, b}


def test_locks_keep_two_runners_off_the_same_items(tmp_path):
    make_wav(tmp_path / "a.wav")
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "a.wav"])
    other = Manifest(tmp_path / "m")  # a second process would open its own handles like this
    with manifest.open_log("s"):
        with pytest.raises(StageBusyError, match="another process is running stage 's'"):
            with other.open_log("s"):
                pass
        with other.open_log("t"):  # another stage is free
            pass
    with manifest.open_log("s", (0, 2)):
        with other.open_log("s", (1, 2)):  # shards run side by side
            pass
        with pytest.raises(StageBusyError, match="shard 0/2"):
            with other.open_log("s", (0, 2)):
                pass
        with pytest.raises(StageBusyError):  # but not next to an unsharded run
            with other.open_log("s"):
                pass


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")

    def broken(f):
        f.write(b"half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_remove_stale_temps_only_touches_temporaries(tmp_path):
    (tmp_path / ".audio.wav.abc123.tmp").write_bytes(b"x")
    (tmp_path / "audio.wav").write_bytes(b"y")
    (tmp_path / "keep.tmp").write_bytes(b"z")  # not one of ours (no leading dot)
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [".audio.wav.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.wav", "keep.tmp"]
