"""The Study tab's API through gradio_client: studies by name (never a server path), created from uploaded videos
or from the built-in systems, rated (the trial lives in a gr.State that the client keeps per session), bad votes
refused in the message line without storing anything, resume with a new session, the end of a study, and the
win / tie / loss results of every pair, CSV and plot."""
import csv
import hashlib
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from renderer.video import write_mp4

LETTERS = "ABC"


def _videos(tmp_path, items, systems):
    """Tiny real mp4s named <item>__<system>.mp4, each with its own content -> (files, sha256 -> (item, system))."""
    d = tmp_path / "videos"
    d.mkdir()
    files, who = [], {}
    for i, item in enumerate(items):
        for j, system in enumerate(systems):
            f = d / f"{item}__{system}.mp4"
            level = 20 + 60 * j + 7 * i                      # a distinct grey per video, so its bytes name it
            write_mp4(f, [np.full((64, 64, 3), level + 3 * k, np.uint8) for k in range(4)])
            files.append(f)
            who[hashlib.sha256(f.read_bytes()).hexdigest()] = (item, system)
    return files, who


def _shown(out, who):
    """The (item, systems in the positions A, B, C) a /study_start or /study_vote answer shows, found by content,
    not by file name (the names are no part of the API's promise)."""
    shown = []
    for video in out[1:4]:
        if not video.get("visible", True) or not video.get("value"):
            continue
        value = video["value"]
        path = value["video"] if isinstance(value, dict) else value
        path = path["path"] if isinstance(path, dict) else path
        shown.append(who[hashlib.sha256(Path(path).read_bytes()).hexdigest()])
    items = {i for i, _ in shown}
    assert len(items) <= 1, shown
    return (items.pop() if items else None), [s for _, s in shown]


def _create(client, name, mode, systems, files):
    from gradio_client import handle_file

    message, study = client.predict(name, mode, ", ".join(systems), [handle_file(str(f)) for f in files],
                                    api_name="/study_create")
    assert message.startswith(f"Study “{name}” created") and study["value"] == name
    assert "/" not in message
    return name


def _results(client, name):
    table, plot, votes_csv, message = client.predict(name, api_name="/study_results")
    assert table["headers"] == ["comparison", "win %", "tie %", "loss %", "n", "p"]
    assert Path(plot).stat().st_size > 1000 and "vote" in message
    with open(votes_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r[0]: r[1:] for r in table["data"]}, rows


def _expected(wins, ties, losses):
    n = wins + ties + losses
    return [round(100 * wins / n, 1), round(100 * ties / n, 1), round(100 * losses / n, 1), n,
            f"{binomtest(wins, wins + losses, 0.5).pvalue:.3g}"]


DONE = "All {} trials done — thank you!"


def test_rank_study_create_vote_bad_vote_results(server, tmp_path):
    from gradio_client import Client, handle_file

    systems = ["ours", "DiffPoseTalk", "ARTalk"]
    items = ["q0", "q1", "q2"]
    files, who = _videos(tmp_path, items, systems)
    client = Client(server, verbose=False)
    message, _ = client.predict("rank-api", "rank", ", ".join(systems), [handle_file(str(f)) for f in files[:-1]],
                                api_name="/study_create")
    assert "items without a video" in message                                   # one video missing: refused
    name = _create(client, "rank-api", "rank", systems, files)
    assert name in client.predict(None, api_name="/study_list")["choices"][0]
    out = client.predict(name, "alice", None, "A > B > C", "", api_name="/study_vote")
    assert "Start / resume" in out[-1]                                         # no trial in this session yet
    assert "Type your name" in client.predict(name, "  ", api_name="/study_start")[-1]
    assert "no study named 'nope'" in client.predict("nope", "alice", api_name="/study_start")[-1]
    assert "no study named" in client.predict("/tmp/../etc", "alice", api_name="/study_start")[-1]

    out = client.predict(name, "alice", api_name="/study_start")
    assert out[0] == "Trial 1 of 3" and out[-1] == ""
    assert out[4]["visible"] is False and out[5]["visible"] is True          # rank mode: the ranking box only
    item, shown = _shown(out, who)
    assert sorted(shown) == sorted(systems)

    for bad in ("A > A > B", "A > B"):                                          # a letter twice, a letter left out
        out = client.predict(name, "alice", None, bad, "", api_name="/study_vote")
        assert "Rank every video once" in out[-1]
    again = client.predict(name, "alice", api_name="/study_start")              # nothing stored: same trial
    assert again[0] == "Trial 1 of 3" and _shown(again, who) == (item, shown)

    best_first = {"q0": ["ours", "DiffPoseTalk", "ARTalk"],                    # what alice prefers, per item
                  "q1": ["DiffPoseTalk", "ours", "ARTalk"],
                  "q2": ["ours", "ARTalk", "DiffPoseTalk"]}
    seen = []
    for k in range(3):
        seen.append(item)
        ranking = " > ".join(LETTERS[shown.index(s)] for s in best_first[item])
        out = client.predict(name, "alice", None, ranking.lower().replace(" > ", ", "), f"comment {item}",
                             api_name="/study_vote")                            # "a, c, b" is read as A > C > B
        assert out[-1] == "" and out[-2]["value"] == ""                       # no message; comment cleared
        if k < 2:
            assert out[0] == f"Trial {k + 2} of 3"
            item, shown = _shown(out, who)
            assert item not in seen and sorted(shown) == sorted(systems)
    assert DONE.format(3) in out[0]
    assert all(v["visible"] is False for v in out[1:7])                       # videos, controls, comment
    assert sorted(seen) == items
    assert DONE.format(3) in client.predict(name, "alice", api_name="/study_start")[0]
    out = client.predict(name, "alice", None, "A > B > C", "", api_name="/study_vote")   # a vote after the end
    assert DONE.format(3) in out[0] and out[-1] == ""

    table, rows = _results(client, name)
    assert table == {"ours vs DiffPoseTalk": _expected(2, 0, 1),               # won q0, q2; lost q1
                     "ours vs ARTalk": _expected(3, 0, 0),
                     "DiffPoseTalk vs ARTalk": _expected(2, 0, 1)}             # every pair is counted
    assert len(rows) == 3                                                       # one row per vote, not per pair
    assert {r["item"] for r in rows} == set(items) and {r["rater"] for r in rows} == {"alice"}
    assert {r["comment"] for r in rows} == {f"comment {i}" for i in items}


def test_pairwise_study_bad_vote_resume_and_results(server, tmp_path):
    from gradio_client import Client

    systems = ["ours", "ARTalk"]
    items = ["p0", "p1", "p2", "p3"]
    files, who = _videos(tmp_path, items, systems)
    first = Client(server, verbose=False)
    name = _create(first, "pair-api", "pairwise", systems, files)
    out = first.predict(name, "carol", api_name="/study_start")
    assert out[0] == "Trial 1 of 4"
    assert out[3]["visible"] is False                                           # two videos, the third hidden
    assert out[4]["visible"] is True and out[5]["visible"] is False           # pairwise: the A / tie / B choice
    item, shown = _shown(out, who)
    assert sorted(shown) == sorted(systems)
    out = first.predict(name, "carol", None, "", "", api_name="/study_vote")
    assert "Choose A better, tie or B better" in out[-1]
    assert first.predict(name, "carol", api_name="/study_start")[0] == "Trial 1 of 4"
    assert _results(first, name)[1] == []                                       # the bad vote stored nothing

    outcome = {"p0": "ours", "p1": "tie", "p2": "ARTalk", "p3": "ours"}        # who carol says is better

    def choice(item, shown):
        winner = outcome[item]
        return "tie" if winner == "tie" else "A better" if shown[0] == winner else "B better"

    voted = []
    for _ in range(2):                                                          # half, in the first session
        voted.append(item)
        out = first.predict(name, "carol", choice(item, shown), "", "", api_name="/study_vote")
        item, shown = _shown(out, who)
    assert out[0] == "Trial 3 of 4"

    second = Client(server, verbose=False)                                      # a new session, same rater
    out = second.predict(name, "carol", "tie", "", "", api_name="/study_vote")
    assert "Start / resume" in out[-1]                                          # its State holds no trial yet
    out = second.predict(name, "carol", api_name="/study_start")
    assert out[0] == "Trial 3 of 4"
    item, shown = _shown(out, who)
    assert item not in voted
    assert second.predict(name, "dave", api_name="/study_start")[0] == "Trial 1 of 4"  # another rater starts over
    out = second.predict(name, "carol", api_name="/study_start")                 # back to carol's place
    item, shown = _shown(out, who)
    while item is not None:
        assert item not in voted                                                # nothing shown twice
        voted.append(item)
        out = second.predict(name, "carol", choice(item, shown), "", "", api_name="/study_vote")
        item, shown = _shown(out, who)
    assert DONE.format(4) in out[0]
    assert sorted(voted) == items

    table, rows = _results(second, name)
    assert table == {"ours vs ARTalk": _expected(2, 1, 1)}                     # p0, p3 won; p1 tie; p2 lost
    assert table["ours vs ARTalk"][:4] == [50.0, 25.0, 25.0, 4]
    assert len(rows) == 4 and sorted(r["item"] for r in rows) == items
    assert {r["rater"] for r in rows} == {"carol"}


def test_a_study_of_the_built_in_systems_in_one_click(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    message, study = client.predict("builtin-api", "pairwise", ["A²-LLM-nano", "audio-only"],
                                    "happy | Haha, that is great news!\nsad | Oh no, that is so sad.",
                                    api_name="/study_create_builtin")
    assert message.startswith("Study “builtin-api” created: 2 sentences, 2 trials")
    assert study["value"] == "builtin-api"
    out = client.predict("builtin-api", "erin", api_name="/study_start")
    assert out[0] == "Trial 1 of 2"
    videos = [v for v in out[1:4] if v.get("visible", True) and v.get("value")]
    assert len(videos) == 2
    for name, bad, match in (("other", ["A²-LLM-nano"], "at least two"),
                             ("builtin-api", ["A²-LLM-nano", "audio-only"], "exists already")):
        message, _ = client.predict(name, "rank", bad, "Hello.", api_name="/study_create_builtin")
        assert match in message
