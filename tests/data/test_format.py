"""FLAME-QA on-disk format: write, read back, resume, validate."""
import json

import numpy as np
import pytest

from a2llm.data import FlameQASample, FlameQAWriter, Turn, load_flame_qa


def sample(i: int, split: str = "train", emotion: str = "happy", frames: int = 30) -> FlameQASample:
    rng = np.random.default_rng(i)
    sr = 16000
    return FlameQASample(
        id=f"s{i:03d}", question_text=f"question {i}?", question_audio=rng.uniform(-0.5, 0.5, sr).astype(np.float32),
        response_text=f"answer {i}.", response_audio=rng.uniform(-0.5, 0.5, frames * sr // 25).astype(np.float32),
        sample_rate=sr, motion=rng.normal(size=(frames, 58)).astype(np.float32), emotion=emotion,
        audio_tokens=rng.integers(0, 40, frames), context=[Turn("human", "hi"), Turn("assistant", "hello")],
        high_dynamic=i % 2 == 0, source="test", split=split, meta={"k": i})


def test_round_trip(tmp_path):
    with FlameQAWriter(tmp_path, shard_size=2) as w:
        for i in range(5):
            w.add(sample(i, split="test" if i == 4 else "train"))
    info = json.loads((tmp_path / "dataset.json").read_text())
    assert info["splits"]["train"]["num_samples"] == 4 and len(info["splits"]["train"]["shards"]) == 2
    ds = load_flame_qa(tmp_path, split="train")
    assert len(ds) == 4 and len(load_flame_qa(tmp_path)) == 5
    s, ref = ds[1], sample(1)
    assert s.question_text == ref.question_text and s.emotion == "happy" and s.meta == {"k": 1}
    assert s.context == ref.context and s.high_dynamic is False
    np.testing.assert_array_equal(s.motion, ref.motion)
    np.testing.assert_array_equal(s.audio_tokens, ref.audio_tokens)
    assert s.question_audio.dtype == np.float32 and np.abs(s.response_audio - ref.response_audio).max() < 1e-4
    assert s.sample_rate == 16000 and [x.id for x in ds] == ["s000", "s001", "s002", "s003"]


def test_writer_resumes_and_refuses_duplicates(tmp_path):
    w = FlameQAWriter(tmp_path)
    w.add(sample(0))
    w.close()
    w2 = FlameQAWriter(tmp_path)
    assert w2.has("s000") and not w2.has("s001")
    with pytest.raises(ValueError, match="already"):
        w2.add(sample(0))
    w2.add(sample(1))
    w2.close()
    assert len(load_flame_qa(tmp_path)) == 2


def test_bad_samples_are_refused_and_leave_nothing(tmp_path):
    w = FlameQAWriter(tmp_path)
    bad = sample(0)
    bad.emotion = "angry"
    with pytest.raises(ValueError, match="emotion"):
        w.add(bad)
    bad = sample(1)
    bad.audio_tokens = bad.audio_tokens[:-1]
    with pytest.raises(ValueError, match="audio tokens"):
        w.add(bad)
    bad = sample(2)
    bad.motion[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        w.add(bad)
    assert not any(tmp_path.rglob("*.flac"))


def test_missing_folder_and_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="a2llm.data.nano"):
        load_flame_qa(tmp_path)
    with FlameQAWriter(tmp_path) as w:
        w.add(sample(0))
    with pytest.raises(ValueError, match="split"):
        load_flame_qa(tmp_path, split="val")
