"""The app starts, binds 127.0.0.1, and every endpoint answers through gradio_client: one endpoint per action with
an explicit name, named outputs, refusals that say why (in the message line for the page's events), no server
paths, and every refusal logged in one line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2llm.motion.io import save_motion

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_options():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True).stdout
    for opt in ("--host", "--port", "--share", "--head", "127.0.0.1", "--auth", "--keep-turns", "--segments",
                "--studies", "--checkpoint"):
        assert opt in out


def test_analytics_are_off_and_auth_and_hosts_are_parsed():
    env = subprocess.run([sys.executable, "-c", "import app, os; print(os.environ['GRADIO_ANALYTICS_ENABLED'])"],
                         cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert env == "False"
    import app

    assert app.parse_auth("lab:secret") == ("lab", "secret") and app.parse_auth(None) is None
    for bad in ("lab", ":x", "lab:"):
        with pytest.raises(ValueError, match="USER:PASS"):
            app.parse_auth(bad)
    assert app.is_loopback("127.0.0.1") and app.is_loopback("::1") and app.is_loopback("localhost")
    assert not app.is_loopback("0.0.0.0") and not app.is_loopback("192.168.1.5")


def test_endpoints_have_explicit_names_and_named_outputs(server):
    from gradio_client import Client

    api = Client(server, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/send", "/send_recording", "/stop", "/new_dialogue", "/chat_text", "/chat_audio", "/compare",
            "/compare_nano", "/render_pose", "/study_start", "/study_vote", "/study_results", "/study_list",
            "/study_create", "/study_create_builtin"} == set(api)
    for name, ep in api.items():
        labels = [p["label"] for p in ep["parameters"] + ep["returns"]]
        assert not any(str(lab).startswith("value_") for lab in labels), (name, labels)
    assert [r["label"] for r in api["/chat_text"]["returns"]] == ["video", "metrics"]
    assert [p["label"] for p in api["/chat_audio"]["parameters"]] == ["audio", "voice"]


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
    from gradio_client import Client

    client = Client(server, verbose=False)
    video, m = client.predict("How was the concert?", api_name="/chat_text")
    path = video["video"] if isinstance(video, dict) else video
    assert {"ttft_ms", "ttfa_ms", "rtf", "speech_s", "text", "heard", "turn"} == set(m) and m["ttfa_ms"] > 0
    assert m["heard"] is None and m["turn"] == 1 and Path(path).name == "turn-01.mp4"
    from renderer.video import probe_mp4

    assert probe_mp4(path)["frames"] == round(25 * m["speech_s"])
    video, lower = client.predict("How was the concert?", "lower", api_name="/chat_text")
    assert lower["text"] == m["text"]
    for text, match in (("\u200b\u200b\u200b", "no visible characters"), ("x" * 5000, "at most 1,000"),
                        ("Hi", "unknown voice 'robot'")):
        with pytest.raises(Exception, match=match):
            client.predict(text, "robot" if text == "Hi" else "", api_name="/chat_text")


def _texts(chat) -> list[str]:
    """The Dialogue's messages as text (a message's content comes back as a list of parts)."""
    def text(content):
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return [text(m["content"]) for m in chat]


def test_a_conversation_through_the_pages_endpoints_survives_refusals(server):
    """/send as the page sends it: a refused turn (too long, invisible, a checkpoint not on offer) changes nothing
    and the next turn is answered; every refusal is one line of the server's log, no traceback, no path.
    Outputs: video, dialogue, metrics, stages, plot, the turn's mp4, its motion files, text box, message, idle."""
    from gradio_client import Client

    client = Client(server, verbose=False)
    out = client.predict("How was the concert?", "human", "a2llm-nano", "default", api_name="/send")
    chat, message = out[1], out[8]
    assert message == "" and [m["role"] for m in chat] == ["user", "assistant"]
    assert _texts(chat)[0] == "How was the concert?" and _texts(chat)[1]
    assert Path(out[5]).name == "turn-01.mp4"
    assert sorted(Path(f).name for f in out[6]) == ["turn-01.glb", "turn-01_arkit.csv", "turn-01_arkit.json",
                                                   "turn-01_motion.npz"]
    before = server.log.read_text()
    out = client.predict("x" * 20000, "human", "a2llm-nano", "default", api_name="/send")
    assert "20,000 characters" in out[8] and "at most 1,000" in out[8]
    assert _texts(out[1]) == _texts(chat)                                          # the dialogue is unchanged
    out = client.predict("\u200b\u200b\u200b", "human", "a2llm-nano", "default", api_name="/send")
    assert "no visible characters" in out[8]
    out = client.predict("Did you enjoy the party?", "human", "a2llm-nano", "default", api_name="/send")
    assert out[8] == "" and len(out[1]) == 4 and _texts(out[1])[2] == "Did you enjoy the party?"
    assert Path(out[5]).name == "turn-02.mp4"
    log = server.log.read_text()[len(before):]
    refusals = [line for line in log.splitlines() if "refused turn" in line]
    assert len(refusals) == 2 and "Traceback" not in log and str(ROOT) not in log
    for field in (2, 1):                                        # a folder typed for the checkpoint, or the head
        args = ["Hi", "human", "a2llm-nano", "default"]
        args[field] = str(ROOT / "checkpoints" / "open_head")
        with pytest.raises(Exception, match="not in the list of choices"):        # only the offered names
            client.predict(*args, api_name="/send")
    client.predict(api_name="/stop")
    out = client.predict(api_name="/new_dialogue")
    assert out[0] == [] and out[4] == ""                       # dialogue, metrics, stages, plot, message, ...


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
    import soundfile as sf
    from gradio_client import Client, handle_file

    from a2llm.eval.bench import spoken

    client = Client(server, verbose=False)
    sf.write(tmp_path / "question.wav", spoken("How was the concert?"), 16000)
    video, m = client.predict(handle_file(str(tmp_path / "question.wav")), api_name="/chat_audio")
    assert m["speech_s"] > 0.5 and m["ttfa_ms"] > 0 and m["heard"]                # what the model heard
    video, m2 = client.predict(handle_file(str(tmp_path / "question.wav")), "child", api_name="/chat_audio")
    assert m2["speech_s"] > 0.5                                                     # a voice on /chat_audio
    sf.write(tmp_path / "noise.wav", 0.3 * np.random.default_rng(0).standard_normal(3 * 16000), 16000)
    with pytest.raises(Exception, match="No speech found"):
        client.predict(handle_file(str(tmp_path / "noise.wav")), api_name="/chat_audio")
    (tmp_path / "notes.wav").write_text("these are not audio samples\n" * 20)
    good = (tmp_path / "question.wav").read_bytes()
    (tmp_path / "corrupt.wav").write_bytes(good[:44] + bytes(range(256)) * 4)       # a WAV header, then junk
    (tmp_path / "truncated.flac").write_bytes(b"fLaC" + good[4:200])
    for name in ("notes.wav", "truncated.flac"):
        with pytest.raises(Exception, match="not a readable audio file") as refused:
            client.predict(handle_file(str(tmp_path / name)), api_name="/chat_audio")
        assert "/" not in str(refused.value).split("not a readable audio file")[-1]    # no server path
    with pytest.raises(Exception, match="ms long|silent|readable"):
        client.predict(handle_file(str(tmp_path / "corrupt.wav")), api_name="/chat_audio")
    # the server is still up and answers
    video, metrics = client.predict("Did you enjoy the party?", api_name="/chat_text")
    assert metrics["speech_s"] > 0.5
