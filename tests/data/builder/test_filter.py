"""Quality filters: word error rate and every gate of the filter stage."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from a2llm.data.builder.manifest import Item, Record, StageResult
from a2llm.data.builder.stages import FilterStage
from a2llm.data.builder.stages.filter import FilterConfig, evaluate
from a2llm.data.builder.text import edit_distance, word_error_rate, words

TEXT = "Well, I think it went great, honestly"


def test_words_and_wer():
    assert words("Don’t STOP—it's   fine!") == ["don't", "stop", "it's", "fine"]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert word_error_rate("the cat sat", "The cat sat.") == 0.0
    assert word_error_rate("the cat sat", "the dog sat down") == pytest.approx(2 / 3)
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "hi") == 1.0


def _record(duration=3.0, text=TEXT, cleaned=None, avg_logprob=-0.3, rms=-20.0, usable=True,
            question="How did the interview go?", emotion="happy", frames=None):
    outputs = {
        "audio": {"duration_s": duration, "rms_dbfs": rms},
        "asr": {"text": text, "avg_logprob": avg_logprob},
        "emotion": {"emotion": emotion},
        "llm": {"cleaned_answer": cleaned if cleaned is not None else text, "question": question,
                "usable": usable, "reason": "" if usable else "song lyrics", "text_emotion": "happy"},
        "tts": {"duration_s": 1.2},
        "smirk": {"frames": round(duration * 25) if frames is None else frames},
    }
    results = {s: StageResult(id="x", stage=s, status="done", output=o) for s, o in outputs.items()}
    return Record(item=Item(id="x", source=Path("/x.mp4"), kind="video"), root=Path("/m"), results=results)


def test_a_good_item_passes_with_its_metrics():
    stage = FilterStage()
    out = stage.process(_record(), Path("/unused"))
    assert out["passed"] and out["reasons"] == []
    m = out["metrics"]
    assert m["words_per_s"] == pytest.approx(7 / 3) and m["clean_wer"] == 0.0 and m["av_mismatch_s"] == 0.0


@pytest.mark.parametrize("kwargs, reason", [
    ({"duration": 0.5, "text": "yes"}, "duration_s 0.5 < 1"),
    ({"duration": 40.0, "text": " ".join(["word"] * 80)}, "duration_s 40 > 30"),
    ({"duration": 1.0}, "words_per_s 7 > 5"),
    ({"duration": 20.0}, "words_per_s 0.35 < 0.5"),
    ({"rms": -70.0}, "rms_dbfs -70 < -50"),
    ({"avg_logprob": -1.4}, "avg_logprob -1.4 < -1"),
    ({"cleaned": "I believe the interview went really well"}, "clean_wer"),
    ({"usable": False}, "LLM judged it unusable: song lyrics"),
    ({"question": "Why?"}, "question_words 1 < 3"),
    ({"frames": 100}, "av_mismatch_s 1 > 0.2"),
])
def test_each_gate_rejects_with_a_reason(kwargs, reason):
    reasons, _ = evaluate(_record(**kwargs), FilterConfig())
    assert len(reasons) == 1 and reasons[0].startswith(reason), reasons


def test_gates_can_be_switched_off_and_acoustic_emotion_required():
    off = FilterConfig(min_duration_s=None, min_words_per_s=None, min_avg_logprob=None, max_clean_wer=None)
    assert evaluate(_record(duration=0.5, text="yes", avg_logprob=-3, cleaned="no"), off)[0] == []
    need = FilterConfig(require_acoustic_emotion=True)
    assert evaluate(_record(emotion="sad"), need)[0] == []
    assert evaluate(_record(emotion=None), need)[0][0].startswith("no acoustic emotion")
    assert evaluate(_record(emotion=None), FilterConfig())[0] == []  # off by default


def test_motion_requirement_decides_whether_smirk_is_required():
    assert "smirk" in FilterStage().requires
    no_motion = FilterStage(dataclasses.replace(FilterConfig(), require_motion=False))
    assert no_motion.requires == ("audio", "asr", "emotion", "llm", "tts")
    assert "av_mismatch_s" not in no_motion.process(_record(frames=1), Path("/unused"))["metrics"]
