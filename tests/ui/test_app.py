"""The app starts, binds 127.0.0.1, and its Compare and Head endpoints answer through gradio_client."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2llm.motion.io import save_motion

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_options():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    for opt in ("--host", "--port", "--share", "--head", "127.0.0.1"):
        assert opt in out


def test_compare_and_head_endpoints(server, tmp_path):
    from gradio_client import Client, handle_file

    T = 20
    t = np.arange(T) / 25
    ref = np.zeros((T, 58), np.float32)
    ref[:, 50] = 0.1 * (1 + np.sin(2 * np.pi * 2 * t))
    save_motion(tmp_path / "gt.npz", ref)
    save_motion(tmp_path / "half.npz", ref * 0.5)
    client = Client(server, verbose=False)
    video, table, plot = client.predict(handle_file(str(tmp_path / "gt.npz")), [handle_file(str(tmp_path / "half.npz"))],
                                        "GT,half", None, "open", "auto", 128, api_name="/compare")
    assert Path(video).stat().st_size > 0 and Path(plot).stat().st_size > 0
    row = dict(zip(table["headers"], table["data"][0]))
    assert row["system"] == "half"
    assert abs(row["Liveliness"] - 0.5) < 0.01 and row["MOD (mm)"] > 0   # opening ~ linear in jaw angle
    image = client.predict("open", 0.3, 0.0, 0.0, 0.0, 1.0, 0, 0, 0, 0, 0, api_name="/render_pose")
    assert Path(image).stat().st_size > 0
    with pytest.raises(Exception, match="labels"):
        client.predict(handle_file(str(tmp_path / "gt.npz")), [handle_file(str(tmp_path / "half.npz"))],
                       "only-one", None, "open", "auto", 128, api_name="/compare")


def test_chat_text_answers_with_video_and_metrics(server):
    import json

    from gradio_client import Client

    client = Client(server, verbose=False)
    video, metrics = client.predict("How was the concert?", api_name="/chat_text")
    path = video["video"] if isinstance(video, dict) else video
    m = json.loads(metrics)
    assert {"ttft_ms", "ttfa_ms", "rtf"} <= set(m) and m["ttfa_ms"] > 0
    from renderer.video import probe_mp4

    assert probe_mp4(path)["frames"] == round(25 * m["speech_s"])


def test_compare_nano_animates_one_sentence_with_every_built_in_system(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    ref, others, labels, video, table, plot = client.predict(
        "Wow, I never expected that!", "surprised", "open", 128, api_name="/compare_nano")
    names = [s.strip() for s in labels.split(",")]
    assert names[0] == "ground truth" and {"A²-LLM-nano", "adapter-only", "audio-only"} <= set(names)
    assert len(others) == len(names) - 1
    assert Path(video).stat().st_size > 0 and Path(plot).stat().st_size > 0
    rows = {r[0]: dict(zip(table["headers"], r)) for r in table["data"]}
    assert set(rows) == set(names[1:])
    assert all(0 < r["MOD (mm)"] < 20 for r in rows.values())
    with pytest.raises(Exception, match="sentence"):
        client.predict("   ", "happy", "open", 128, api_name="/compare_nano")


def test_chat_audio_answers_a_spoken_file_and_refuses_bad_files_with_the_server_staying_up(server, tmp_path):
    import json

    import soundfile as sf
    from gradio_client import Client, handle_file

    from a2llm.eval.bench import spoken

    client = Client(server, verbose=False)
    sf.write(tmp_path / "question.wav", spoken("How was the concert?"), 16000)
    video, metrics = client.predict(handle_file(str(tmp_path / "question.wav")), api_name="/chat_audio")
    m = json.loads(metrics)
    assert m["speech_s"] > 0.5 and m["ttfa_ms"] > 0
    (tmp_path / "notes.wav").write_text("these are not audio samples\n" * 20)
    good = (tmp_path / "question.wav").read_bytes()
    (tmp_path / "corrupt.wav").write_bytes(good[:44] + bytes(range(256)) * 4)       # a WAV header, then junk
    (tmp_path / "truncated.flac").write_bytes(b"fLaC" + good[4:200])
    for name in ("notes.wav", "truncated.flac"):
        with pytest.raises(Exception, match="not a readable audio file"):
            client.predict(handle_file(str(tmp_path / name)), api_name="/chat_audio")
    with pytest.raises(Exception, match="ms long|silent|readable"):
        client.predict(handle_file(str(tmp_path / "corrupt.wav")), api_name="/chat_audio")
    # the server is still up and answers
    video, metrics = client.predict("Did you enjoy the party?", api_name="/chat_text")
    assert json.loads(metrics)["speech_s"] > 0.5
