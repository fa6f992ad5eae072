"""Study tab: blinded preference trials (pairs or k-way ranking), votes committed at once, results as table 5."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui.files import new_output
from ui.study import LETTERS, PAIR_CHOICES, Study, VoteStore, create_study, export_csv, next_trial, plot_results, results

MAX_SHOWN = 3


def _store(study: Study) -> VoteStore:
    return VoteStore(study.root / "votes.sqlite")


def _load(path: str) -> Study:
    if not path:
        raise gr.Error("Give the study file (study.json).")
    try:
        return Study.load(path)
    except (OSError, ValueError) as e:
        raise gr.Error(str(e)) from e


def show_next(path: str, rater: str):
    """-> progress text, up to 3 videos (+ visibility), rank / choice controls, trial state."""
    study = _load(path)
    if not rater or not rater.strip():
        raise gr.Error("Enter your rater name (it keeps your place and your order of trials).")
    trial, (done, total) = next_trial(study, _store(study), rater.strip())
    if trial is None:
        return ([f"All {total} trials done — thank you!"] + [gr.update(value=None, visible=False)] * MAX_SHOWN
                + [gr.update(visible=False), gr.update(visible=False), None])
    item_id, shown = trial
    item = next(i for i in study.items if i["id"] == item_id)
    videos = [gr.update(value=str(study.stimulus(item, s)), visible=True, label=f"{LETTERS[k]}")
              for k, s in enumerate(shown)]
    videos += [gr.update(value=None, visible=False)] * (MAX_SHOWN - len(shown))
    pair = study.mode == "pairwise"
    ranks = [str(k) for k in range(1, len(shown) + 1)]
    return ([f"Trial {done + 1} of {total}"] + videos +
            [gr.update(visible=pair, value=None),
             gr.update(visible=not pair, value=" > ".join(LETTERS[:len(shown)]),
                       info=f"order the letters best first, e.g. {' > '.join(LETTERS[:len(shown)][::-1])}"),
             {"item": item_id, "shown": list(shown), "ranks": ranks}])


def vote(path: str, rater: str, trial: dict | None, choice: str | None, ranking: str, comment: str):
    study = _load(path)
    if not trial:
        raise gr.Error("Press “Start / resume” first.")
    shown = tuple(trial["shown"])
    if study.mode == "pairwise":
        if choice not in PAIR_CHOICES:
            raise gr.Error("Choose A better, tie or B better.")
        answer = {"winner": "tie" if choice == "tie" else shown[0] if choice == "A better" else shown[1]}
    else:
        letters = [x.strip().upper() for x in (ranking or "").replace(",", ">").split(">") if x.strip()]
        if sorted(letters) != list(LETTERS[:len(shown)]):
            raise gr.Error(f"Rank every stimulus once, best first, e.g. {' > '.join(LETTERS[:len(shown)])}")
        answer = {"ranking": [shown[LETTERS.index(x)] for x in letters]}
    _store(study).add(study, rater.strip(), trial["item"], shown, answer, comment)
    return show_next(path, rater) + [""]


def show_results(path: str):
    study = _load(path)
    rows = results(study, _store(study))
    table = [[r["comparison"], round(r["win"], 1), round(r["tie"], 1), round(r["loss"], 1), r["n"],
              f"{r['p_value']:.3g}"] for r in rows]
    plot = plot_results(rows, new_output(".png", "study"))
    csv = export_csv(study, _store(study), new_output(".csv", "votes"))
    return table, str(plot), str(csv)


def make_study(name: str, mode: str, systems: str, files):
    names = [s.strip() for s in (systems or "").split(",") if s.strip()]
    if not name or not names or not files:
        raise gr.Error("Give a name, the systems (ours first) and the videos named <item>__<system>.mp4.")
    try:
        path = create_study(name, mode, names, [getattr(f, "name", f) for f in files],
                            Path(new_output("", f"study-{name}")))
    except (OSError, ValueError) as e:
        raise gr.Error(str(e)) from e
    return str(path)


def build() -> None:
    trial = gr.State(None)
    with gr.Row():
        path = gr.Textbox(label="Study file (study.json)", scale=3)
        rater = gr.Textbox(label="Your rater name", scale=1)
        start = gr.Button("Start / resume", variant="primary")
    progress = gr.Markdown()
    with gr.Row():
        videos = [gr.Video(label=LETTERS[k], visible=False, height=280) for k in range(MAX_SHOWN)]
    with gr.Row():
        choice = gr.Radio(list(PAIR_CHOICES), label="Which face fits the speech and its meaning better?",
                          visible=False)
        ranking = gr.Textbox(label="Your ranking (best first)", visible=False)
    comment = gr.Textbox(label="Comment (optional)")
    submit = gr.Button("Submit vote")
    outs = [progress] + videos + [choice, ranking, trial]
    start.click(show_next, [path, rater], outs)
    submit.click(vote, [path, rater, trial, choice, ranking, comment], outs + [comment], api_name="study_vote")
    with gr.Accordion("Results (table 5: win / tie / loss, binomial test)", open=False):
        go = gr.Button("Compute results")
        table = gr.Dataframe(headers=["comparison", "win %", "tie %", "loss %", "n", "p"], interactive=False)
        bars = gr.Image(type="filepath", label="Win / tie / loss")
        csv = gr.File(label="All votes (CSV)")
        go.click(show_results, [path], [table, bars, csv], api_name="study_results")
    with gr.Accordion("Create a study from rendered videos", open=False):
        with gr.Row():
            name = gr.Textbox(label="Name")
            mode = gr.Radio(["rank", "pairwise"], value="rank", label="Mode")
            systems = gr.Textbox(label="Systems, ours first", placeholder="A2LLM-nano, DiffPoseTalk, ARTalk")
        files = gr.File(label="Videos <item>__<system>.mp4 (e.g. renders from the Compare tab)", file_count="multiple")
        made = gr.Textbox(label="Study file written")
        gr.Button("Create").click(make_study, [name, mode, systems, files], made, api_name="study_create")
