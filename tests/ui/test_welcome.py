"""The welcome: example questions the embedded model was trained on, a line on its world, an idle loop."""
import numpy as np

from ui.welcome import example_questions, idle_clip, idle_motion, is_nano, welcome_line


def test_examples_are_seen_wordings_with_training_topics():
    from a2llm.data.nano.templates import HELD_OUT_TOPICS, TEMPLATES, TRAIN_TOPICS
    from a2llm.data.nano.world import INTENTS, render

    seen = {render(i, w, t) for i in INTENTS.values() if not i.held and i.kind in ("template", "opener", "feeling")
            for w in i.seen_wordings
            for t in ((TRAIN_TOPICS if i.has_topic else (None,)))}
    qs = example_questions()
    assert len(qs) >= 5 and set(qs) <= seen
    assert not any(t in q.lower() for q in qs for t in HELD_OUT_TOPICS)
    held_templates = {t.question.split("{t}")[0] for t in TEMPLATES if t.holdout}
    assert not any(q.startswith(h) for q in qs for h in held_templates if h)
    assert "How was the tour?" in qs


def test_the_welcome_line_says_what_nano_talks_about():
    line = welcome_line({"name": "a2llm-nano"})
    assert "the concert" in line and "how you feel" in line and "more" in line
    assert is_nano({"name": "a2llm-nano"}) and not is_nano({"name": "step-audio-2"})
    assert "step-audio-2" in welcome_line({"name": "step-audio-2"})


def test_the_idle_loop_blinks_sways_and_loops(tmp_path):
    from a2llm.motion.layout import EYELIDS, GLOBAL

    m = idle_motion()
    assert m.shape == (100, 58) and np.isfinite(m).all()
    lids = m[:, EYELIDS.start]
    closed = np.flatnonzero(lids > 0.9)
    assert len(closed) >= 2 and np.ptp(closed) > 25             # two separate blinks
    assert (lids < 0.05).mean() > 0.8                          # eyes open most of the time
    head = m[:, GLOBAL]
    assert 0.01 < np.abs(head).max() < 0.1                    # small head motion
    step = np.abs(np.diff(np.vstack([m, m[:1]]), axis=0)).max(axis=1)
    assert step[-1] <= step[:-1].max() + 1e-6                  # looping back is no bigger a step than any other
    clip = idle_clip("open", size=64, folder=tmp_path)
    from renderer.video import probe_mp4

    assert probe_mp4(clip)["frames"] == 100 and idle_clip("open", size=64, folder=tmp_path) == clip   # cached
