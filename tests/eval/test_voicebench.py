"""python -m a2llm.eval voicebench: OpenAudioBench's released layout, scoring, the judge interface, resuming,
table 2, errors — on a tiny fixture in the release's layout (espeak-ng speech, 22.05 kHz WAV)."""
import csv
import json
from pathlib import Path

import pytest
import soundfile as sf

from a2llm.eval.__main__ import main
from a2llm.eval.voicebench import LayoutError, load_items
from a2llm.eval.voicebench.cache import JsonlCache
from a2llm.eval.voicebench.judges import JudgeNotConfigured
from a2llm.eval.voicebench.layout import SUBSETS
from a2llm.eval.voicebench.runner import run_model
from a2llm.eval.voicebench.scoring import Scorer, parse_verdict, references
from a2llm.eval.voicebench.table import format_table

ROOT = Path(__file__).resolve().parents[2]

#: subset -> rows: (question, CSV columns besides audio_filename, the fake model's answer)
QUESTIONS = {
    "alpaca_eval": [
        ("Tell me a fun fact about octopuses.", {"output": "Octopuses have three hearts."},
         "Octopuses have three hearts and blue blood."),
        ("How do I boil an egg?", {"output": "Put it in boiling water for nine minutes."},
         "Boil it for nine minutes."),
    ],
    "llama_questions": [
        ("What is the capital of France?", {"Answer": "Paris"}, "The capital of France is Paris."),
        ("How many legs does a spider have?", {"Answer": "eight"}, "A spider has 8 legs."),
        ("What color is the sky on a clear day?", {"Answer": "blue"}, "Blue!"),
    ],
    "reasoning_qa": [
        ("I have three apples and eat one. How many are left?", {"参考答案": "2"}, "Two apples are left."),
        ("What is seven times six?", {"参考答案": "42"}, "It is 42."),
    ],
    "trivia_qa": [
        ("Which planet is known as the red planet?",
         {"answer_normalized_value": "mars", "answer_normalized_aliases": "['mars', 'planet mars']"},
         "Mars, the fourth planet."),
        ("Who wrote Hamlet?",
         {"answer_normalized_value": "william shakespeare",
          "answer_normalized_aliases": "['william shakespeare', 'shakespeare', 'bard of avon']"},
         "Hamlet was written by Shakespeare."),
    ],
    "web_questions": [
        ("what language do they speak in brazil?", {"answers": "['Portuguese Language']"}, "They speak Portuguese."),
        ("what is the currency of japan?", {"answers": "['Japanese yen']"}, "The Japanese Yen."),
    ],
}
#: The matching rule's verdicts on the answers above, per subset (0-100).
MATCH_SCORES = {"llama_questions": 200 / 3, "trivia_qa": 100.0, "web_questions": 50.0}
ANSWERS = {q: a for rows in QUESTIONS.values() for q, _, a in rows}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """OpenAudioBench/eval_datas/<subset>/{<subset>.csv, audios/<subset>_<i>.wav} with spoken questions."""
    from a2llm.data.espeak import synthesize

    root = tmp_path_factory.mktemp("bench") / "OpenAudioBench"
    for subset, rows in QUESTIONS.items():
        folder = root / "eval_datas" / subset
        (folder / "audios").mkdir(parents=True)
        columns = ["audio_filename", SUBSETS[subset].question] + list(rows[0][1])
        with open(folder / f"{subset}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for i, (question, extra, _) in enumerate(rows):
                name = f"{subset}_{i}.wav"
                speech = synthesize(question)
                sf.write(folder / "audios" / name, speech.audio, speech.sample_rate)
                writer.writerow({"audio_filename": name, SUBSETS[subset].question: question, **extra})
    return root


class FakeAnswerer:
    """Known answers (by question); counts calls; raises once ``fail_after`` answers were given."""

    name = "fake"

    def __init__(self, fail_after=None):
        self.calls, self.fail_after, self.seen = 0, fail_after, []

    def answer(self, item, audio):
        assert audio.dtype.name == "float32" and audio.ndim == 1 and len(audio) > 8000   # 16 kHz speech
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.calls += 1
        self.seen.append(item.id)
        return ANSWERS[item.question]


class FakeJudge:
    """Replies chosen by the model answer found in the prompt; records every prompt."""

    name = "fake-judge"

    def __init__(self, replies, fail_after=None):
        self.replies, self.prompts, self.fail_after = replies, [], fail_after

    def complete(self, prompt):
        if self.fail_after is not None and len(self.prompts) >= self.fail_after:
            raise KeyboardInterrupt("judge interrupted")
        self.prompts.append(prompt)
        return next(reply for answer, reply in self.replies.items() if answer in prompt)


JUDGE_REPLIES = {
    "Octopuses have three hearts and blue blood.": "Helpful and accurate. Rating: [[7]]",
    "Boil it for nine minutes.": "Correct but terse. Rating: [[9]]",
    "The capital of France is Paris.": "Matches. the score is [Correct]",
    "A spider has 8 legs.": "8 is eight, the score is [Correct]",
    "Blue!": "I cannot decide.",                                                  # unparsable: left out
    "Two apples are left.": "Right answer, no working: the grade is [4]",
    "It is 42.": "Correct, no working, [4]. On reflection the grade is [5]",      # the last grade counts
    "Mars, the fourth planet.": '```json\n{"analysis": "names Mars", "judgment": "correct"}\n```',
    "Hamlet was written by Shakespeare.": "{'analysis': 'Shakespeare', 'judgment': 'correct'}",
    "They speak Portuguese.": '{"analysis": "same language", "judgment": "correct"}',
    "The Japanese Yen.": '{"analysis": "yen", "judgment": "incorrect"}',
}
JUDGE_SCORES = {"alpaca_eval": 80.0, "llama_questions": 100.0, "reasoning_qa": 90.0, "trivia_qa": 100.0,
                "web_questions": 50.0}


def _scores(result):
    return {k: v.score for k, v in result.subsets.items()}


def test_layout_reads_the_release_columns(bench):
    items = load_items(bench, "reasoning_qa")                 # the folder above eval_datas ...
    assert [it.reference for it in items] == ["2", "42"]      # ... and the Chinese reference column
    assert load_items(bench / "eval_datas", "trivia_qa", limit=1)[0].id == "trivia_qa_0.wav"
    assert references(load_items(bench, "trivia_qa")[1]) == ["william shakespeare", "shakespeare", "bard of avon"]


def test_release_mp3_clips_load_at_16k(bench, tmp_path):
    from a2llm.eval.voicebench.layout import load_audio

    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile reads no MP3")
    pcm, rate = sf.read(bench / "eval_datas/llama_questions/audios/llama_questions_0.wav", dtype="float32")
    sf.write(tmp_path / "q.mp3", pcm, rate, format="MP3")
    audio = load_audio(tmp_path / "q.mp3")
    assert audio.dtype.name == "float32" and abs(len(audio) / 16000 - len(pcm) / rate) < 0.1
    (tmp_path / "lfs.mp3").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n")
    with pytest.raises(LayoutError, match="git lfs pull"):
        load_audio(tmp_path / "lfs.mp3")


def test_matching_rule_scores_known_answers(bench, tmp_path):
    qa = list(MATCH_SCORES)
    result = run_model(bench, FakeAnswerer(), tmp_path, Scorer(None, "match"), qa, progress=False)
    assert _scores(result) == pytest.approx(MATCH_SCORES)
    assert result.average == pytest.approx(sum(MATCH_SCORES.values()) / 3)
    assert all(r.scoring == "match" for r in result.subsets.values())


def test_judge_gets_the_rubric_and_its_verdicts_are_used(bench, tmp_path):
    judge = FakeJudge(JUDGE_REPLIES)
    result = run_model(bench, FakeAnswerer(), tmp_path, Scorer(judge), progress=False)
    assert _scores(result) == pytest.approx(JUDGE_SCORES)
    assert result.subsets["llama_questions"].invalid == 1 and result.subsets["alpaca_eval"].invalid == 0
    assert result.average == pytest.approx(sum(JUDGE_SCORES.values()) / 5)
    assert len(judge.prompts) == sum(len(r) for r in QUESTIONS.values())
    by_answer = {a: p for p in judge.prompts for a in ANSWERS.values() if a in p}
    spider = by_answer["A spider has 8 legs."]
    assert "How many legs does a spider have?" in spider and "eight" in spider and "the score is [Correct]" in spider
    hamlet = by_answer["Hamlet was written by Shakespeare."]
    assert "Who wrote Hamlet?" in hamlet and "['william shakespeare', 'shakespeare', 'bard of avon']" in hamlet
    assert '"judgment"' in hamlet
    egg = by_answer["Boil it for nine minutes."]
    assert "How do I boil an egg?" in egg and "[[rating]]" in egg and "nine minutes." in egg
    assert "Put it in boiling water" not in egg                 # AlpacaEval's judge sees no reference
    assert "[4]" in by_answer["Two apples are left."] and "42" in by_answer["It is 42."]
    # the judge's replies are cached with their scores; a second run asks nothing
    again = FakeJudge(JUDGE_REPLIES)
    assert _scores(run_model(bench, FakeAnswerer(), tmp_path, Scorer(again), progress=False)) == pytest.approx(
        JUDGE_SCORES)
    assert again.prompts == []


def test_verdict_parsing_edges():
    assert parse_verdict("alpaca_eval", "[[11]]") is None and parse_verdict("alpaca_eval", "[[10]]") == 100
    assert parse_verdict("llama_questions", "The Score Is [incorrect]") == 0
    assert parse_verdict("trivia_qa", 'no json but "judgment": "correct"') == 100
    assert parse_verdict("web_questions", '{"analysis": "x", "judgment": "unsure"}') is None


def test_resume_answers_only_what_is_missing(bench, tmp_path):
    qa = list(MATCH_SCORES)
    total = sum(len(QUESTIONS[s]) for s in qa)
    full = run_model(bench, FakeAnswerer(), tmp_path / "full", Scorer(None, "match"), qa, progress=False)

    out = tmp_path / "resumed"
    first = FakeAnswerer(fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_model(bench, first, out, Scorer(None, "match"), qa, progress=False)
    cached = [p for p in (out / "answers").glob("*.jsonl")]
    assert sum(len(p.read_text().splitlines()) for p in cached) == 4
    with open(out / "answers" / "trivia_qa.jsonl", "a") as f:   # a torn write from the interruption
        f.write('{"id": "trivia_qa_0.wav", "answ')
    second = FakeAnswerer()
    resumed = run_model(bench, second, out, Scorer(None, "match"), qa, progress=False)
    assert second.calls == total - 4 and not set(second.seen) & set(first.seen)
    assert _scores(resumed) == pytest.approx(_scores(full))
    assert len(JsonlCache(out / "answers" / "trivia_qa.jsonl").records) == len(QUESTIONS["trivia_qa"])

    # judging resumes too: interrupted after 3 verdicts, only the rest are asked for
    jout = tmp_path / "judged"
    with pytest.raises(KeyboardInterrupt):
        run_model(bench, FakeAnswerer(), jout, Scorer(FakeJudge(JUDGE_REPLIES, fail_after=3)), progress=False)
    judge = FakeJudge(JUDGE_REPLIES)
    assert _scores(run_model(bench, FakeAnswerer(), jout, Scorer(judge), progress=False)) == pytest.approx(
        JUDGE_SCORES)
    assert len(judge.prompts) == sum(len(r) for r in QUESTIONS.values()) - 3


def test_table2_layout(bench, tmp_path):
    a = run_model(bench, FakeAnswerer(), tmp_path / "a", Scorer(FakeJudge(JUDGE_REPLIES)), progress=False)
    text = format_table([a])
    assert text.startswith("Table 2")
    header = next(line for line in text.splitlines() if line.startswith("Model"))
    for title in ("AlpacaEval", "Llama Questions", "Reasoning QA", "TriviaQA", "Web Questions", "Avg."):
        assert title in header
    row = next(line for line in text.splitlines() if line.startswith("fake "))
    assert row.split()[1:] == ["80.00", "100.00", "90.00", "100.00", "50.00", "84.00"]
    assert "1 unparsable verdicts left out" in text


def test_nano_checkpoint_answers_and_prints_the_table(bench, tmp_path, capsys):
    argv = ["voicebench", "--data", str(bench), "--checkpoint", str(ROOT / "checkpoints/a2llm-nano"),
            "--subsets", "llama_questions", "trivia_qa", "--limit", "1", "--qa-scoring", "match",
            "--out", str(tmp_path), "--max-new-tokens", "200"]
    assert main(argv + ["--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    row = table["rows"][0]
    assert row["model"] == "a2llm-nano" and set(row["subsets"]) == {"llama_questions", "trivia_qa"}
    assert all(s["n"] == 1 and s["score"] in (0.0, 100.0) for s in row["subsets"].values())
    for subset in ("llama_questions", "trivia_qa"):
        (record,) = JsonlCache(tmp_path / "a2llm-nano" / "answers" / f"{subset}.jsonl").records.values()
        assert isinstance(record["answer"], str) and record["answer"].strip()
    assert main(argv) == 0                                        # all cached now: the text table
    out = capsys.readouterr().out
    assert "Table 2" in out and "a2llm-nano" in out and "Llama Questions" in out and "TriviaQA" in out


def test_bad_folders_and_missing_judge_are_clear_errors(bench, tmp_path, capsys):
    with pytest.raises(LayoutError, match="does not exist"):
        load_items(tmp_path / "nowhere", "llama_questions")
    (tmp_path / "junk").mkdir()
    with pytest.raises(LayoutError, match="eval_datas/<subset>/<subset>.csv"):
        load_items(tmp_path / "junk", "llama_questions")
    broken = tmp_path / "broken" / "eval_datas" / "web_questions"
    (broken / "audios").mkdir(parents=True)
    (broken / "web_questions.csv").write_text("audio_filename,question\nw.wav,q\n")
    with pytest.raises(LayoutError, match=r"lacks column\(s\) \['answers'\]"):
        load_items(tmp_path / "broken", "web_questions")
    (broken / "web_questions.csv").write_text("audio_filename,question,answers\nw.wav,q,a\n")
    with pytest.raises(LayoutError, match="1 of 1 clips of web_questions are missing"):
        load_items(tmp_path / "broken", "web_questions")
    with pytest.raises(LayoutError, match="llama_questions.csv is missing"):
        load_items(tmp_path / "broken", "llama_questions")

    assert main(["voicebench", "--data", str(tmp_path / "junk"), "--qa-scoring", "match",
                 "--subsets", "web_questions"]) == 1
    assert "not in OpenAudioBench's layout" in capsys.readouterr().err
    assert main(["voicebench", "--data", str(bench), "--judge", "none", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "alpaca_eval" in err and "--judge openai" in err and "--qa-scoring match" in err
    with pytest.raises(JudgeNotConfigured, match="reasoning_qa is scored by a judge"):
        Scorer(None, "match").check(["trivia_qa", "reasoning_qa"])


def test_openai_judge_speaks_the_chat_completions_api(bench, tmp_path, monkeypatch):
    from tests.fake_openai import FakeChatServer

    from a2llm.eval.voicebench.judges import JudgeError, OpenAIJudge, make_judge

    server = FakeChatServer("the score is [Correct]", reject_auth="Bearer wrong")
    url = server.url
    try:
        monkeypatch.setenv("VB_TEST_KEY", "sk-test")
        judge = make_judge("openai", "judge-7b", url, api_key_env="VB_TEST_KEY")
        result = run_model(bench, FakeAnswerer(), tmp_path, Scorer(judge), ["llama_questions"], progress=False)
        assert result.subsets["llama_questions"].score == 100.0 and len(server.requests) == 3
        path, auth, body = (server.requests[0][k] for k in ("path", "auth", "body"))
        assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
        assert body["model"] == "judge-7b" and body["temperature"] == 0
        assert [m["role"] for m in body["messages"]] == ["user"]
        assert "What is the capital of France?" in body["messages"][0]["content"]
        with pytest.raises(JudgeError, match="HTTP 401"):
            OpenAIJudge("judge-7b", url, "wrong").complete("hi")
    finally:
        server.close()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(JudgeNotConfigured, match=r"\$OPENAI_API_KEY"):
        make_judge("openai")
    with pytest.raises(JudgeNotConfigured, match="--judge-model"):
        make_judge("hf")
