"""User-preference studies: blinded pairwise or k-way ranking trials, votes in SQLite (WAL), results as the seed's
table 5 (Win / Tie / Loss per pair, binomial test).

A **study file** (JSON) lists items; each item holds the same audio rendered by systems A, B, …::

    {"name": "nano-vs-baselines", "mode": "rank",            # or "pairwise"
     "systems": ["A2LLM-nano", "DiffPoseTalk", "ARTalk"],    # the first is "ours" in the results table
     "items": [{"id": "q01", "stimuli": {"A2LLM-nano": "q01_ours.mp4", "DiffPoseTalk": "...", "ARTalk": "..."}}]}

Paths are relative to the study file. Each rater sees every trial once, in an order and with positions shuffled
by a generator seeded with (study, rater): pairwise mode makes one trial per item and pair of systems, rank mode
one trial per item with all systems (pairwise results are derived from the ranks). Every vote is one committed
SQLite transaction the moment it is cast (WAL journal), so a crash loses nothing; a rater resumes where they
stopped. Results count every pair of systems (Win / Tie / Loss, binomial test).

Studies live in one folder each under a studies root (:class:`StudyShelf`, the app's ``outputs/studies/``),
found and opened by their name: the study file, the blinded stimuli and ``votes.sqlite``. Nothing ever deletes
them.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
import sqlite3
import re
import time
from dataclasses import dataclass
from pathlib import Path

LETTERS = "ABCDEFGH"
PAIR_CHOICES = ("A better", "tie", "B better")


@dataclass(frozen=True)
class Study:
    name: str
    mode: str
    systems: tuple[str, ...]
    items: tuple[dict, ...]
    root: Path

    @classmethod
    def load(cls, path: str | Path) -> "Study":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no study file at {path}")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        for key in ("name", "mode", "systems", "items"):
            if key not in raw:
                raise ValueError(f"{path}: missing {key!r}")
        if raw["mode"] not in ("pairwise", "rank"):
            raise ValueError(f"{path}: mode must be 'pairwise' or 'rank', got {raw['mode']!r}")
        systems = tuple(raw["systems"])
        if not 2 <= len(systems) <= len(LETTERS) or len(set(systems)) != len(systems):
            raise ValueError(f"{path}: give 2 to {len(LETTERS)} distinct systems")
        for item in raw["items"]:
            missing = [s for s in systems if s not in item.get("stimuli", {})]
            if missing or "id" not in item:
                raise ValueError(f"{path}: item {item.get('id')!r} lacks an id or stimuli for {missing}")
        return cls(raw["name"], raw["mode"], systems, tuple(raw["items"]), path.parent)

    def stimulus(self, item: dict, system: str) -> Path:
        return (self.root / item["stimuli"][system]).resolve()

    def trials(self) -> list[tuple[str, tuple[str, ...]]]:
        """(item id, systems) of every trial, unshuffled."""
        groups = (list(itertools.combinations(self.systems, 2)) if self.mode == "pairwise" else [self.systems])
        return [(item["id"], tuple(g)) for item in self.items for g in groups]

    def schedule(self, rater: str) -> list[tuple[str, tuple[str, ...]]]:
        """This rater's trials: order and positions shuffled, seeded by (study, rater)."""
        seed = int(hashlib.sha256(f"{self.name}/{rater}".encode()).hexdigest()[:16], 16)
        rng = random.Random(seed)
        trials = [(i, tuple(rng.sample(g, len(g)))) for i, g in self.trials()]
        rng.shuffle(trials)
        return trials


class VoteStore:
    """Votes of one study in SQLite (WAL). Safe for several threads (one connection each call)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS votes (id INTEGER PRIMARY KEY, study TEXT, rater TEXT, "
                       "item TEXT, shown TEXT, answer TEXT, comment TEXT, ts REAL, "
                       "UNIQUE(study, rater, item, shown))")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)     # autocommit: one vote, one commit
        db.execute("PRAGMA synchronous=FULL")
        return db

    def add(self, study: Study, rater: str, item: str, shown: tuple[str, ...], answer: dict, comment: str = "") -> None:
        """Commit one vote now. ``shown``: the systems in the positions the rater saw (A, B, ...)."""
        key = json.dumps(sorted(shown))
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO votes (study, rater, item, shown, answer, comment, ts) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (study.name, rater, item, key, json.dumps(answer), comment or "", time.time()))

    def votes(self, study: Study, rater: str | None = None) -> list[dict]:
        q, args = "SELECT rater, item, shown, answer, comment, ts FROM votes WHERE study = ?", [study.name]
        if rater is not None:
            q, args = q + " AND rater = ?", args + [rater]
        with self._connect() as db:
            rows = db.execute(q + " ORDER BY id", args).fetchall()
        return [{"rater": r, "item": i, "systems": tuple(json.loads(s)), "answer": json.loads(a), "comment": c,
                 "ts": t} for r, i, s, a, c, t in rows]

    def done(self, study: Study, rater: str) -> set[tuple[str, tuple[str, ...]]]:
        return {(v["item"], v["systems"]) for v in self.votes(study, rater)}


def next_trial(study: Study, store: VoteStore, rater: str):
    """The rater's next unanswered trial (item id, systems in shown order) and progress (done, total)."""
    schedule = study.schedule(rater)
    done = store.done(study, rater)
    left = [t for t in schedule if (t[0], tuple(sorted(t[1]))) not in done]
    return (left[0] if left else None), (len(schedule) - len(left), len(schedule))


def pair_outcomes(study: Study, votes: list[dict]) -> list[tuple[str, str, str]]:
    """(system x, system y, "x" | "y" | "tie") for every pairwise judgement, ranks expanded into pairs."""
    out = []
    for v in votes:
        a = v["answer"]
        if "winner" in a:
            x, y = v["systems"]
            out.append((x, y, "tie" if a["winner"] == "tie" else ("x" if a["winner"] == x else "y")))
        elif "ranking" in a:                      # best first
            rank = {s: i for i, s in enumerate(a["ranking"])}
            for x, y in itertools.combinations(a["ranking"], 2):
                out.append((x, y, "tie" if rank[x] == rank[y] else ("x" if rank[x] < rank[y] else "y")))
    return out


def results(study: Study, store: VoteStore) -> list[dict]:
    """Table 5 for every pair of systems (study order: "A vs B" counts A's wins): Win / Tie / Loss (%), counts and
    the binomial p-value (two-sided, wins vs losses, ties left out). The first system ("ours") comes first."""
    from scipy.stats import binomtest

    outcomes = pair_outcomes(study, store.votes(study))
    rows = []
    for a, b in itertools.combinations(study.systems, 2):
        w = t = l = 0
        for x, y, r in outcomes:
            if {x, y} != {a, b}:
                continue
            if r == "tie":
                t += 1
            elif (r == "x") == (x == a):
                w += 1
            else:
                l += 1
        n = w + t + l
        p = binomtest(w, w + l, 0.5).pvalue if w + l else float("nan")
        rows.append({"comparison": f"{a} vs {b}", "win": 100 * w / n if n else float("nan"),
                     "tie": 100 * t / n if n else float("nan"), "loss": 100 * l / n if n else float("nan"),
                     "n": n, "wins": w, "ties": t, "losses": l, "p_value": p})
    return rows


def export_csv(study: Study, store: VoteStore, path: str | Path) -> Path:
    """Every vote, one row each (rater, item, systems, answer, comment, time)."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["study", "rater", "item", "systems", "answer", "comment", "timestamp"])
        for v in store.votes(study):
            w.writerow([study.name, v["rater"], v["item"], "|".join(v["systems"]), json.dumps(v["answer"]),
                        v["comment"], v["ts"]])
    return path


def plot_results(rows: list[dict], path: str | Path) -> Path:
    """Stacked Win / Tie / Loss bars per comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.6 * len(rows)))
    names = [r["comparison"] for r in rows]
    left = [0.0] * len(rows)
    for key, color in (("win", "#4c9f70"), ("tie", "#bbbbbb"), ("loss", "#c8553d")):
        vals = [0.0 if r[key] != r[key] else r[key] for r in rows]
        ax.barh(names, vals, left=left, color=color, label=key)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of judgements")
    ax.legend(ncol=3, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def create_study(name: str, mode: str, systems: list[str], files: list[str | Path], out_dir: str | Path) -> Path:
    """A study file from videos named ``<item>__<system>.mp4`` (e.g. the compare tab's renders), copied to
    ``out_dir`` under random names (blinding: only study.json knows which system made which file)."""
    import shutil

    out_dir = Path(out_dir)
    if mode not in ("pairwise", "rank"):
        raise ValueError(f"mode must be 'pairwise' or 'rank', got {mode!r}")
    if not 2 <= len(systems) <= len(LETTERS) or len(set(systems)) != len(systems):
        raise ValueError(f"give 2 to {len(LETTERS)} distinct systems, got {list(systems)}")
    items: dict[str, dict] = {}
    for f in files:
        f = Path(f)
        if "__" not in f.stem:
            raise ValueError(f"{f.name}: name videos <item>__<system>.mp4")
        item, system = f.stem.split("__", 1)
        if system not in systems:
            raise ValueError(f"{f.name}: system {system!r} is not one of {systems}")
        items.setdefault(item, {})[system] = f
    incomplete = [i for i, s in items.items() if set(s) != set(systems)]
    if incomplete or not items:
        raise ValueError(f"items without a video for every system: {incomplete or 'no videos given'}")
    import uuid

    out_dir.mkdir(parents=True, exist_ok=True)
    for stimuli in items.values():                   # checked first, copied after: nothing half-made
        for system, f in stimuli.items():
            # A random name: the stimulus' URL in the rater's browser must not say which system made it.
            blind = f"{uuid.uuid4().hex[:16]}{f.suffix}"
            shutil.copy2(f, out_dir / blind)
            stimuli[system] = blind
    path = out_dir / "study.json"
    path.write_text(json.dumps({"name": name, "mode": mode, "systems": list(systems),
                                "items": [{"id": i, "stimuli": s} for i, s in sorted(items.items())]}, indent=2))
    Study.load(path)
    return path


NAME = re.compile(r"^\w[\w .,()+\-]{0,59}$")


class StudyShelf:
    """The studies under one root folder, by name: ``root/<slug>/study.json`` with its stimuli and votes."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _all(self) -> dict[str, Path]:
        found = {}
        for path in sorted(self.root.glob("*/study.json")) if self.root.is_dir() else []:
            try:
                found.setdefault(Study.load(path).name, path)
            except (OSError, ValueError):          # a broken study is skipped, not fatal to the others
                continue
        return found

    def names(self) -> list[str]:
        return sorted(self._all(), key=str.lower)

    def open(self, name: str | None) -> Study:
        """The study called ``name``, or a ValueError listing those there are."""
        if not name:
            raise ValueError("Choose a study first.")
        path = self._all().get(name)
        if path is None:
            have = ", ".join(self.names()) or "none yet (create one below)"
            raise ValueError(f"There is no study named {name!r}. Studies: {have}.")
        return Study.load(path)

    def new_folder(self, name: str) -> Path:
        """A folder for a new study ``name`` (not created), or a ValueError: a bad or taken name."""
        name = (name or "").strip()
        if not NAME.match(name):
            raise ValueError("Give the study a name of 1-60 letters, digits, spaces or - _ . , ( ) +.")
        if name in self._all():
            raise ValueError(f"A study named {name!r} exists already: choose another name.")
        slug = re.sub(r"[^\w-]+", "-", name).strip("-").lower() or "study"
        folder, k = self.root / slug, 2
        while folder.exists():
            folder, k = self.root / f"{slug}-{k}", k + 1
        return folder

    def create(self, name: str, mode: str, systems: list[str], files: list[str | Path]) -> Study:
        """A new study from videos named ``<item>__<system>.mp4`` (:func:`create_study`)."""
        import shutil

        folder = self.new_folder(name)
        try:
            return Study.load(create_study(name.strip(), mode, systems, files, folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)          # nothing half-made is left on the shelf
            raise
