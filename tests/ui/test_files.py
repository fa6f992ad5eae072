"""outputs/ keeps the newest N turns; studies, desktop recordings, idle clips and turns being written are never
deleted."""
import os
import time

import pytest

from ui import files


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_prune_keeps_the_newest_turns_and_never_touches_user_data(tmp_path):
    turns = []
    for k in range(6):
        d = tmp_path / f"turn-{k:012x}"
        d.mkdir()
        (d / "turn-01.mp4").write_bytes(b"x" * 100)
        _age(d, 1000 - k)                                   # turn-5 is the newest
        turns.append(d)
    for name in ("studies/s/votes.sqlite", "studies/s/study.json", "desktop/20260101-turn01.mp4",
                 "idle/idle-human-384-v1.mp4", "study-old-abc/votes.sqlite"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("keep")
        _age(tmp_path / name, 5000)
    for k in range(10):
        f = tmp_path / f"turns-{k:012x}.png"
        f.write_bytes(b"png")
        _age(f, 1000 - k)
    active = files.new_turn_dir(tmp_path)                  # a turn being written, and old
    _age(active, 9000)
    young = tmp_path / "turn-young"
    young.mkdir()                                           # just finished: another session may be serving it
    removed = files.prune_outputs(keep=2, root=tmp_path)
    left = sorted(p.name for p in tmp_path.glob("turn-*"))
    assert left == sorted([turns[5].name, active.name, "turn-young"])      # the newest two, and the one in use
    assert removed == 5 + 2                                 # 5 old turns, 2 of the 10 plots (4 * keep = 8 kept)
    assert len(list(tmp_path.glob("turns-*.png"))) == 8
    for name in ("studies/s/votes.sqlite", "studies/s/study.json", "desktop/20260101-turn01.mp4",
                 "idle/idle-human-384-v1.mp4", "study-old-abc/votes.sqlite"):
        assert (tmp_path / name).read_text() == "keep"
    files.release(active)
    files.prune_outputs(keep=2, root=tmp_path)
    assert not active.exists()                              # released and old: pruned now


def test_keep_turns_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        files.set_keep_turns(0)
