"""Study tab: blinded preference trials (pairs or k-way ranking), votes committed at once, results as table 5 for
every pair of systems. Studies are chosen by name from those on the shelf (never by a server path), created from
uploaded videos or in one click from the built-in systems. Nothing here raises for a visitor's mistake: the
message line says what to do and every panel stays as it was."""
from __future__ import annotations

import gradio as gr

from ui.errors import note, status
from ui.files import OUTPUT_ROOT, new_output
from ui.study import LETTERS, PAIR_CHOICES, StudyShelf, VoteStore, export_csv, next_trial, plot_results, results

MAX_SHOWN = 3
SETTINGS = {"shelf": StudyShelf(OUTPUT_ROOT / "studies"), "checkpoint": None, "head": "human"}
HOW_TO = """### How to take part
1. **Choose the study** and type **your name** (it keeps your place: come back later with the same name to resume).
2. Press **Start / resume**. Each trial shows two or three videos, **A**, **B** (and **C**): the same sentence,
   each animated by a different system, in a random order. Play each one **with sound**.
3. Pairs: choose which face fits the speech and its meaning better (or a tie). Three videos: rank them, best first,
   e.g. `B > A > C`. Add a comment if you like, then **Submit vote**: it is saved at once.
4. When the last trial is done you are told so. Results and new studies are in the sections at the bottom."""


def _store(study) -> VoteStore:
    return VoteStore(study.root / "votes.sqlite")


def _skip(n: int) -> list:
    return [gr.update() for _ in range(n)]


# outputs of start and vote: progress, 3 videos, choice, ranking, trial state, submit button, comment, message
N_TRIAL_OUTS = 1 + MAX_SHOWN + 6


def _done(total: int) -> list:
    hidden = gr.update(value=None, visible=False)
    return ([f"**All {total} trials done — thank you!** Your votes are saved; you can close this page."]
            + [hidden] * MAX_SHOWN + [gr.update(visible=False), gr.update(visible=False), None,
                                       gr.update(visible=False), gr.update(value="", visible=False), ""])


def study_start(name: str, rater: str):
    """Start or resume: -> the rater's next trial (progress, videos, controls, trial state, message)."""
    try:
        study = SETTINGS["shelf"].open(name)
        if not rater or not rater.strip():
            raise ValueError("Type your name first (it keeps your place and your order of trials).")
    except (OSError, ValueError) as e:
        return _skip(N_TRIAL_OUTS - 1) + [status(note("study_start", e))]
    trial, (done, total) = next_trial(study, _store(study), rater.strip())
    if trial is None:
        return _done(total)
    item_id, shown = trial
    item = next(i for i in study.items if i["id"] == item_id)
    videos = [gr.update(value=str(study.stimulus(item, s)), visible=True, label=f"{LETTERS[k]}")
              for k, s in enumerate(shown)]
    videos += [gr.update(value=None, visible=False)] * (MAX_SHOWN - len(shown))
    pair = study.mode == "pairwise"
    return ([f"Trial {done + 1} of {total}"] + videos +
            [gr.update(visible=pair, value=None),
             gr.update(visible=not pair, value=" > ".join(LETTERS[:len(shown)]),
                       info=f"order the letters best first, e.g. {' > '.join(LETTERS[:len(shown)][::-1])}"),
             {"study": study.name, "item": item_id, "shown": list(shown)},
             gr.update(visible=True), gr.update(value="", visible=True), ""])


def study_vote(name: str, rater: str, trial: dict | None, choice: str | None, ranking: str, comment: str):
    """Store one vote (a single SQLite commit), then show the next trial (or the end)."""
    try:
        study = SETTINGS["shelf"].open(name)
        rater = (rater or "").strip()
        if not rater:
            raise ValueError("Type your name first.")
        if not trial or trial.get("study") != study.name:
            if rater and next_trial(study, _store(study), rater)[0] is None:
                return _done(len(study.schedule(rater)))
            raise ValueError("Press “Start / resume” first.")
        shown = tuple(trial["shown"])
        if study.mode == "pairwise":
            if choice not in PAIR_CHOICES:
                raise ValueError("Choose A better, tie or B better.")
            answer = {"winner": "tie" if choice == "tie" else shown[0] if choice == "A better" else shown[1]}
        else:
            letters = [x.strip().upper() for x in (ranking or "").replace(",", ">").split(">") if x.strip()]
            if sorted(letters) != list(LETTERS[:len(shown)]):
                raise ValueError(f"Rank every video once, best first, e.g. {' > '.join(LETTERS[:len(shown)])}")
            answer = {"ranking": [shown[LETTERS.index(x)] for x in letters]}
    except (OSError, ValueError) as e:
        return _skip(N_TRIAL_OUTS - 1) + [status(note("study_vote", e))]
    _store(study).add(study, rater, trial["item"], shown, answer, comment)
    return study_start(name, rater)


def study_results(name: str):
    """-> (table of every pair, win / tie / loss bars, all votes as CSV, message)."""
    try:
        study = SETTINGS["shelf"].open(name)
    except (OSError, ValueError) as e:
        return _skip(3) + [status(note("study_results", e))]
    rows = results(study, _store(study))
    table = [[r["comparison"], round(r["win"], 1), round(r["tie"], 1), round(r["loss"], 1), r["n"],
              f"{r['p_value']:.3g}"] for r in rows]
    plot = plot_results(rows, new_output(".png", "study"))
    csv = export_csv(study, _store(study), new_output(".csv", "votes"))
    n = len(_store(study).votes(study))
    return table, str(plot), str(csv), f"{n} vote{'s' if n != 1 else ''} in “{study.name}”."


def study_list(current: str | None = None):
    names = SETTINGS["shelf"].names()
    return gr.update(choices=names, value=current if current in names else (names[0] if names else None))


def study_create(name: str, mode: str, systems: str, files):
    """A study from uploaded videos named <item>__<system>.mp4 -> (message, study list with it chosen)."""
    names = [s.strip() for s in (systems or "").split(",") if s.strip()]
    try:
        if not names or not files:
            raise ValueError("Give the systems (ours first) and the videos named <item>__<system>.mp4.")
        study = SETTINGS["shelf"].create(name, mode, names, [getattr(f, "name", f) for f in files])
    except (OSError, ValueError) as e:
        return status(note("study_create", e)), gr.update()
    return f"Study “{study.name}” created: {len(study.items)} items, {len(study.trials())} trials a rater.", \
        study_list(study.name)


def study_create_builtin(name: str, mode: str, systems: list[str], sentences: str):
    """A study of the built-in systems (one video per system per sentence) -> (message, study list)."""
    from ui.study_builtin import create_builtin_study

    try:
        study = create_builtin_study(SETTINGS["shelf"], name, mode, list(systems or []), sentences,
                                     SETTINGS["checkpoint"], SETTINGS["head"])
    except (OSError, ValueError, RuntimeError) as e:
        return status(note("study_create_builtin", e)), gr.update()
    return f"Study “{study.name}” created: {len(study.items)} sentences, {len(study.trials())} trials a rater.", \
        study_list(study.name)


def build(shelf: StudyShelf | None = None, checkpoint: str | None = None, head: str = "human") -> None:
    from ui.study_builtin import DEFAULT_SENTENCES, DEFAULT_SYSTEMS, builtin_systems

    if shelf is not None:
        SETTINGS["shelf"] = shelf
    SETTINGS["checkpoint"], SETTINGS["head"] = checkpoint, head
    names = SETTINGS["shelf"].names()
    trial = gr.State(None)
    gr.Markdown(HOW_TO)
    with gr.Row():
        # Names only; any name is checked against the shelf on the server (a study made after the page loaded is
        # not among the page's choices until it is refreshed, and another session's refresh is not this one's).
        study = gr.Dropdown(names, value=names[0] if names else None, label="Study", scale=2,
                            allow_custom_value=True)
        refresh = gr.Button("Refresh the list", scale=0)
        rater = gr.Textbox(label="Your name", scale=2)
        start = gr.Button("Start / resume", variant="primary", scale=1)
    progress = gr.Markdown(label="progress")
    with gr.Row():
        videos = [gr.Video(label=LETTERS[k], visible=False, height=280) for k in range(MAX_SHOWN)]
    with gr.Row():
        choice = gr.Radio(list(PAIR_CHOICES), label="Which face fits the speech and its meaning better?",
                          visible=False)
        ranking = gr.Textbox(label="Your ranking (best first)", visible=False)
    comment = gr.Textbox(label="Comment (optional)", visible=False)
    submit = gr.Button("Submit vote", visible=False, variant="primary")
    message = gr.Markdown("", elem_id="a2llm-study-status", label="message")
    quiet = {"show_progress": "hidden"}
    outs = [progress, *videos, choice, ranking, trial, submit, comment, message]
    start.click(study_start, [study, rater], outs, api_name="study_start", **quiet)
    submit.click(study_vote, [study, rater, trial, choice, ranking, comment], outs, api_name="study_vote", **quiet)
    refresh.click(study_list, [study], [study], api_name="study_list", **quiet)
    gr.on(None, study_list, None, [study], api_visibility="private", **quiet)     # on page load: today's studies
    with gr.Accordion("Results (table 5 for every pair: win / tie / loss, binomial test)", open=False):
        go = gr.Button("Compute results")
        table = gr.Dataframe(headers=["comparison", "win %", "tie %", "loss %", "n", "p"], interactive=False,
                             label="Results")
        bars = gr.Image(type="filepath", label="Win / tie / loss")
        csv = gr.File(label="All votes (CSV)")
        go.click(study_results, [study], [table, bars, csv, message], api_name="study_results", **quiet)
    with gr.Accordion("Create a study", open=False):
        with gr.Row():
            new_name = gr.Textbox(label="Name of the new study")
            mode = gr.Radio(["rank", "pairwise"], value="rank", label="Mode")
        with gr.Tab("From the built-in systems"):
            gr.Markdown("Each sentence (one per line, optionally `emotion | sentence`) is said by FLAME-QA-nano's "
                        "answer voice and animated by each chosen system: one video per system per sentence.")
            offered = builtin_systems(checkpoint) if checkpoint else list(DEFAULT_SYSTEMS)
            systems_b = gr.CheckboxGroup(offered, value=[s for s in DEFAULT_SYSTEMS if s in offered],
                                         label="Systems (the first checked is “ours” in the results)")
            sentences = gr.Textbox(value=DEFAULT_SENTENCES, lines=4, label="Sentences")
            gr.Button("Create from the built-in systems").click(
                study_create_builtin, [new_name, mode, systems_b, sentences], [message, study],
                api_name="study_create_builtin", **quiet)
        with gr.Tab("From your videos"):
            systems = gr.Textbox(label="Systems, ours first", placeholder="A2LLM-nano, DiffPoseTalk, ARTalk")
            files = gr.File(label="Videos <item>__<system>.mp4 (e.g. renders from the Compare tab)",
                            file_count="multiple")
            gr.Button("Create from these videos").click(study_create, [new_name, mode, systems, files],
                                                        [message, study], api_name="study_create", **quiet)
