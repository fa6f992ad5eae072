"""Offscreen rendering, mp4 muxing, streaming segments, grids and the `python -m renderer` CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from a2llm.head import load_head
from a2llm.motion.io import save_motion
from renderer.grid import GridComposer, grid_shape
from renderer.offscreen import BACKGROUND, HeadRenderer
from renderer.video import SegmentWriter, fit_audio, probe_mp4, write_mp4

ROOT = Path(__file__).resolve().parents[2]


def speech_motion(T: int) -> np.ndarray:
    t = np.arange(T) / 25
    m = np.zeros((T, 58), np.float32)
    m[:, 50] = 0.1 * (1 + np.sin(2 * np.pi * 3 * t))
    m[:, 0] = np.sin(2 * np.pi * 0.5 * t)
    return m


@pytest.fixture(scope="module")
def renderer():
    head = load_head("open")
    with HeadRenderer.for_head(head, size=128) as r:
        yield head, r


def test_frame_shows_a_centred_head(renderer):
    head, r = renderer
    frame = r.render(head.neutral())
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    bg = np.round(np.array(BACKGROUND) * 255)
    fg = np.abs(frame.astype(float) - bg).sum(-1) > 30
    assert 0.2 < fg.mean() < 0.8                              # the head fills a good part of the frame
    ys, xs = np.nonzero(fg)
    assert abs(xs.mean() - 64) < 8                            # horizontally centred
    assert not fg[:, 0].any() and not fg[:, -1].any()         # the whole head width fits


def test_jaw_changes_the_mouth_pixels_only_below_the_eyes(renderer):
    head, r = renderer
    m = np.zeros((2, 58), np.float32)
    m[1, 50] = 0.3
    a, b = (r.render(v).astype(int) for v in head.vertices(m))
    diff = np.abs(a - b).sum(-1) > 40
    rows = np.nonzero(diff.any(1))[0]
    assert diff.sum() > 100 and rows.min() > 128 * 0.45


def test_render_rejects_bad_vertices(renderer):
    head, r = renderer
    with pytest.raises(ValueError, match="shape"):
        r.render(np.zeros((10, 3)))
    bad = head.neutral()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        r.render(bad)


def test_mp4_has_exact_frames_duration_and_codecs(tmp_path):
    frames = [np.full((64, 64, 3), i * 5, np.uint8) for i in range(30)]
    audio = np.sin(np.linspace(0, 300, 16000 * 2)).astype(np.float32)   # 2 s of audio for 1.2 s of video
    out = write_mp4(tmp_path / "a.mp4", frames, audio=audio, sample_rate=16000)
    info = probe_mp4(out)
    assert info["frames"] == 30 and abs(info["seconds"] - 30 / 25) < 1e-6
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert list(tmp_path.iterdir()) == [out]                  # no temporary files left behind


def test_fit_audio_pads_and_trims():
    assert len(fit_audio(np.ones(100), 1000, 5)) == 200
    assert len(fit_audio(np.ones(500), 1000, 5)) == 200


def test_segment_writer_streams_one_second_segments(tmp_path):
    sr = 8000
    w = SegmentWriter(tmp_path, sample_rate=sr, segment_seconds=1.0)
    frames = [np.full((32, 32, 3), 100, np.uint8)] * 60       # 2.4 s
    assert w.add_frames(frames[:30]) == []                     # no audio yet: nothing can be written
    first = w.add_audio(np.zeros(sr // 2, np.float32))
    assert first == []
    first = w.add_audio(np.zeros(sr, np.float32))              # 1.5 s of audio covers segment 0
    assert [p.name for p in first] == ["seg_00000.mp4"]
    w.add_frames(frames[30:])
    w.add_audio(np.zeros(sr, np.float32))
    w.finish()
    infos = [probe_mp4(p) for p in w.segments]
    assert [i["frames"] for i in infos] == [25, 25, 25]        # last one padded to a full second
    assert all(i["audio_codec"] == "aac" for i in infos)
    with pytest.raises(ValueError):
        SegmentWriter(tmp_path, segment_seconds=0.5)


def test_grid_layout_and_labels():
    assert grid_shape(3) == (1, 3) and grid_shape(5) == (2, 3)
    g = GridComposer(["ours", "ARTalk", "FaceFormer"], tile_size=64, band=20)
    out = g.compose([np.full((64, 64, 3), 200, np.uint8)] * 3)
    assert out.shape == (84, 192, 3)
    assert (out[:20] != 200).any() and (out[20:] == 200).all()
    with pytest.raises(ValueError):
        g.compose([np.zeros((64, 64, 3), np.uint8)])


def test_grid_labels_draw_the_superscript_two_of_a2llm():
    from renderer.grid import label_band

    two, missing, blank = label_band(["A²", "A\ue000", "A"], tile_w=80, cols=1, height=24)
    assert not np.array_equal(two, missing)         # "²" is a real glyph, not the missing-glyph box
    assert not np.array_equal(two, blank)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "renderer", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_single_and_three_avatar_grid(tmp_path):
    T = 30
    sr = 16000
    save_motion(tmp_path / "a.npz", speech_motion(T), audio=np.zeros(int(T / 25 * sr), np.float32), sample_rate=sr)
    save_motion(tmp_path / "b.npz", speech_motion(T) * 0.5)
    save_motion(tmp_path / "c.npz", np.roll(speech_motion(T), 3, 0))
    res = run_cli(tmp_path / "a.npz", "-o", tmp_path / "one.mp4", "--size", 96, "--quiet")
    assert res.returncode == 0, res.stderr
    info = probe_mp4(tmp_path / "one.mp4")
    assert info["frames"] == T and abs(info["seconds"] - T / 25) < 1e-6 and info["audio_codec"] == "aac"
    res = run_cli(tmp_path / "a.npz", "--compare", tmp_path / "b.npz", tmp_path / "c.npz",
                  "--labels", "ours,half,late", "-o", tmp_path / "grid.mp4", "--size", 96, "--quiet")
    assert res.returncode == 0, res.stderr
    import imageio.v3 as iio
    frame = iio.imread(tmp_path / "grid.mp4", index=0)
    assert frame.shape[1] == 3 * 96 and probe_mp4(tmp_path / "grid.mp4")["frames"] == T


def test_cli_errors_are_clear(tmp_path, capsys):
    # in-process (the CLI itself runs as a subprocess above): each subprocess costs ~5 s of imports
    from renderer.__main__ import main

    assert main([str(tmp_path / "missing.npz"), "-o", str(tmp_path / "x.mp4")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    save_motion(tmp_path / "a.npz", speech_motion(10))
    assert main([str(tmp_path / "a.npz"), "--compare", str(tmp_path / "a.npz"), "--labels", "one",
                 "-o", str(tmp_path / "x.mp4")]) == 1
    assert "labels" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--compare" in capsys.readouterr().out
