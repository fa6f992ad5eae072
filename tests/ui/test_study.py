"""Studies: blinded seeded schedules, votes committed at once (kill -9 loses none), resume, table 5 results."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ui.study import (Study, StudyShelf, VoteStore, create_study, export_csv, next_trial, pair_outcomes, plot_results,
                      results)

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ["ours", "DiffPoseTalk", "ARTalk"]


def _study(tmp_path, mode="rank", items=6):
    files = []
    for i in range(items):
        for s in SYSTEMS:
            f = tmp_path / "src" / f"q{i:02d}__{s}.mp4"
            f.parent.mkdir(exist_ok=True)
            f.write_bytes(b"not really a video")
            files.append(f)
    return Study.load(create_study(f"s-{mode}", mode, SYSTEMS, files, tmp_path / "study"))


def test_schedules_are_seeded_per_rater_and_cover_every_trial(tmp_path):
    study = _study(tmp_path, "pairwise")
    a, a2, b = study.schedule("alice"), study.schedule("alice"), study.schedule("bob")
    assert a == a2 and a != b
    assert sorted((i, tuple(sorted(g))) for i, g in a) == sorted((i, tuple(sorted(g))) for i, g in study.trials())
    assert len(a) == 6 * 3                                     # 3 pairs per item
    positions = {g[0] for _, g in a}
    assert len(positions) > 1                                   # positions are shuffled, not fixed


def test_stimulus_file_names_do_not_tell_the_system(tmp_path):
    study = _study(tmp_path, "rank", items=2)
    names = [p.name for p in (tmp_path / "study").iterdir() if p.suffix == ".mp4"]
    assert len(names) == 2 * len(SYSTEMS)
    assert not any(s.lower() in n.lower() or "__" in n for n in names for s in SYSTEMS)
    item = study.items[0]
    assert {study.stimulus(item, s).name for s in SYSTEMS} <= set(names)


def test_votes_resume_and_rank_results(tmp_path):
    study = _study(tmp_path, "rank")
    store = VoteStore(tmp_path / "votes.sqlite")
    for rater in ("alice", "bob"):
        for _ in range(4 if rater == "alice" else 6):
            (item, shown), _ = next_trial(study, store, rater)
            store.add(study, rater, item, shown, {"ranking": ["ours", "DiffPoseTalk", "ARTalk"]})
    again = VoteStore(tmp_path / "votes.sqlite")                # a new process / restart
    trial, (done, total) = next_trial(study, again, "alice")
    assert (done, total) == (4, 6) and trial is not None
    assert next_trial(study, again, "bob")[0] is None
    rows = {r["comparison"]: r for r in results(study, again)}
    assert list(rows) == ["ours vs DiffPoseTalk", "ours vs ARTalk", "DiffPoseTalk vs ARTalk"]    # every pair
    r = rows["ours vs DiffPoseTalk"]
    assert (r["win"], r["tie"], r["loss"], r["n"]) == (100.0, 0.0, 0.0, 10)
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 10)
    r = rows["DiffPoseTalk vs ARTalk"]                          # not involving ours: counted all the same
    assert (r["wins"], r["ties"], r["losses"]) == (10, 0, 0)
    assert len(pair_outcomes(study, again.votes(study))) == 30
    rows_csv = export_csv(study, again, tmp_path / "votes.csv").read_text().splitlines()
    assert len(rows_csv) == 11 and rows_csv[0].startswith("study,rater")
    assert plot_results(list(rows.values()), tmp_path / "bars.png").stat().st_size > 1000


def test_pairwise_ties_and_losses(tmp_path):
    study = _study(tmp_path, "pairwise", items=2)
    store = VoteStore(tmp_path / "v.sqlite")
    store.add(study, "r", "q00", ("ours", "ARTalk"), {"winner": "ARTalk"})
    store.add(study, "r", "q01", ("ARTalk", "ours"), {"winner": "tie"})
    row = {r["comparison"]: r for r in results(study, store)}["ours vs ARTalk"]
    assert (row["wins"], row["ties"], row["losses"]) == (0, 1, 1)


def test_bad_study_files_are_refused(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"name": "x", "mode": "vote", "systems": ["a", "b"], "items": []}))
    with pytest.raises(ValueError, match="mode"):
        Study.load(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        Study.load(p)
    with pytest.raises(ValueError, match="every system"):
        create_study("x", "rank", SYSTEMS, [tmp_path / "q1__ours.mp4"], tmp_path / "o")


def test_the_shelf_opens_studies_by_name_and_refuses_taken_or_bad_names(tmp_path):
    shelf = StudyShelf(tmp_path / "studies")
    assert shelf.names() == []
    src = []
    for i in range(2):
        for s in SYSTEMS:
            f = tmp_path / "src" / f"q{i}__{s}.mp4"
            f.parent.mkdir(exist_ok=True)
            f.write_bytes(b"video")
            src.append(f)
    study = shelf.create("Nano vs baselines (May)", "pairwise", SYSTEMS, src)
    assert shelf.names() == ["Nano vs baselines (May)"] and study.root.parent == tmp_path / "studies"
    assert shelf.open("Nano vs baselines (May)").items == study.items
    with pytest.raises(ValueError, match="exists already"):
        shelf.create("Nano vs baselines (May)", "rank", SYSTEMS, src)
    for bad in ("", "../up", "/etc/passwd", "x" * 61):
        with pytest.raises(ValueError, match="name of 1-60"):
            shelf.new_folder(bad)
    with pytest.raises(ValueError, match="no study named 'nope'.*Nano vs baselines"):
        shelf.open("nope")
    with pytest.raises(ValueError, match="every system"):                   # nothing half-made is left
        shelf.create("half", "rank", SYSTEMS, src[:2])
    assert shelf.names() == ["Nano vs baselines (May)"] and len(list((tmp_path / "studies").iterdir())) == 1


def test_built_in_sentences_are_parsed_with_their_emotions():
    from ui.study_builtin import parse_sentences

    assert parse_sentences("happy | Haha, great!\n\nOh no.\n") == [("happy", "Haha, great!"), ("neutral", "Oh no.")]
    for bad, match in (("", "at least one"), ("angry | Grr.", "unknown emotion"), ("sad |  ", "no sentence"),
                       ("x\n" * 11, "at most 10")):
        with pytest.raises(ValueError, match=match):
            parse_sentences(bad)


VOTER = """
import sys, itertools
from ui.study import Study, VoteStore
study, store = Study.load(sys.argv[1]), VoteStore(sys.argv[2])
for n in itertools.count():
    store.add(study, f"r{n}", "q00", tuple(study.systems), {"ranking": list(study.systems)})
    print(n + 1, flush=True)          # reported only after the commit returned
"""


def test_kill_9_while_voting_loses_no_committed_vote(tmp_path):
    study = _study(tmp_path, "rank", items=1)
    db = tmp_path / "k.sqlite"
    VoteStore(db)
    proc = subprocess.Popen([sys.executable, "-c", VOTER, str(tmp_path / "study" / "study.json"), str(db)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    reported = 0
    deadline = time.time() + 60
    while reported < 40 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.strip():
            reported = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reported >= 40
    assert len(VoteStore(db).votes(study)) >= reported
