"""The smirk stage: the "not installed" error, the loader on a stand-in SMIRK checkout, cropping, and the
conversion of per-frame outputs of a fake SMIRK encoder to [T, 58] motion at 25 fps on real video files."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.runner import ItemError
from a2llm.data.builder.stages import SmirkStage
from a2llm.data.builder.stages.smirk import (SmirkConfig, SmirkExtractor, SmirkNotAvailable, SmirkPaths,
                                             face_box, fill_boxes, load_smirk_encoder, locate_smirk,
                                             to_encoder_input)
from a2llm.motion.io import load_motion
from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW

from .helpers import make_video, make_wav

# --------------------------------------------------------------------------- not installed


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("SMIRK_REPO", raising=False)


def test_not_configured_says_what_to_install(no_env):
    with pytest.raises(SmirkNotAvailable) as err:
        locate_smirk(SmirkConfig())
    message = str(err.value)
    assert "no SMIRK repository is configured" in message
    assert "github.com/georgeretsi/smirk" in message and "SMIRK_em1.pt" in message
    assert '"smirk": {"repo"' in message and "SMIRK_REPO" in message


def test_each_missing_piece_is_named(tmp_path, no_env, monkeypatch):
    with pytest.raises(SmirkNotAvailable, match="is not a SMIRK checkout"):
        locate_smirk(SmirkConfig(repo=str(tmp_path)))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "smirk_encoder.py").write_text("")
    monkeypatch.setenv("SMIRK_REPO", str(tmp_path))  # the environment variable works as well as the config
    with pytest.raises(SmirkNotAvailable, match="pretrained_models/SMIRK_em1.pt does not exist"):
        locate_smirk(SmirkConfig())
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # as if timm were not installed
    with pytest.raises(SmirkNotAvailable, match="'timm'"):
        locate_smirk(SmirkConfig(checkpoint=str(ckpt)))


def test_stage_stops_before_touching_any_item(tmp_path, no_env):
    make_video(tmp_path / "raw" / "v.mp4")
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    with pytest.raises(SmirkNotAvailable):
        run_stage(manifest, SmirkStage(), progress=False)
    assert manifest.results("smirk") == {}


# --------------------------------------------------------------------------- the loader


FAKE_SMIRK_ENCODER = textwrap.dedent("""
    import torch
    from torch import nn

    CALLS = []

    def create_backbone(name, pretrained=True):
        CALLS.append((name, pretrained))
        return nn.Linear(3, 4), 4

    class SmirkEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.expression_encoder, _ = create_backbone("tf_mobilenetv3_large_minimal_100")

        def forward(self, img):
            x = img.mean(dim=(2, 3))
            return {"expression_params": self.expression_encoder(x)}
""")


def test_loader_builds_the_repo_encoder_offline_and_loads_its_weights(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "smirk_encoder.py").write_text(FAKE_SMIRK_ENCODER)
    weights = {"smirk_encoder.expression_encoder.weight": torch.full((4, 3), 0.5),
               "smirk_encoder.expression_encoder.bias": torch.arange(4.0),
               "smirk_generator.whatever": torch.zeros(2)}  # the checkpoint holds the generator too
    torch.save(weights, tmp_path / "ckpt.pt")
    encoder = load_smirk_encoder(SmirkPaths(tmp_path, tmp_path / "ckpt.pt", None), "cpu")
    assert not encoder.training
    assert torch.equal(encoder.expression_encoder.bias, torch.arange(4.0))
    out = encoder(torch.ones(1, 3, 8, 8))["expression_params"]
    assert torch.allclose(out, torch.tensor([[1.5, 2.5, 3.5, 4.5]]))
    calls = type(encoder).__init__.__globals__["CALLS"]  # the loaded module's globals
    assert calls == [("tf_mobilenetv3_large_minimal_100", False)]  # no ImageNet download requested

    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(SmirkNotAvailable, match="no 'smirk_encoder.\\*' tensors"):
        load_smirk_encoder(SmirkPaths(tmp_path, tmp_path / "bad.pt", None), "cpu")


# --------------------------------------------------------------------------- cropping


def test_crop_follows_smirks_box_convention():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :100] = 255  # left half white
    box = face_box(np.array([[30.0, 30.0], [70.0, 70.0]]), scale=1.0)
    assert box == (50.0, 50.0, 40.0)
    crop = to_encoder_input(frame[None], [box])
    assert crop.shape == (1, 3, 224, 224) and torch.allclose(crop, torch.ones_like(crop))
    right = to_encoder_input(frame[None], [(150.0, 50.0, 40.0)])
    assert right.abs().max() == 0
    edge = to_encoder_input(frame[None], [(100.0, 50.0, 40.0)])[0, 0, 112]  # box straddles the edge
    assert edge[:100].min() > 0.99 and edge[124:].max() < 0.01
    whole = to_encoder_input(frame[None], None)
    assert whole.shape == (1, 3, 224, 224) and 0.45 < whole.mean() < 0.55


def test_fill_boxes_holds_the_last_face():
    a, b = (1.0, 1.0, 1.0), (2.0, 2.0, 2.0)
    assert fill_boxes([None, a, None, b, None]) == [a, a, a, b, b]
    with pytest.raises(ItemError, match="no face"):
        fill_boxes([None, None])


# --------------------------------------------------------------------------- conversion with a fake SMIRK


class FakeSmirk:
    """Per-frame parameters derived from the frame's brightness, so the test can predict the motion."""

    def __init__(self):
        self.batches = []

    def __call__(self, images):
        assert images.shape[1:] == (3, 224, 224)
        self.batches.append(images.shape[0])
        level = images.mean(dim=(1, 2, 3))  # [B] in [0, 1]
        b = images.shape[0]
        return {"expression_params": level[:, None] * torch.arange(1, 51.0)[None],
                "pose_params": torch.tensor([0.0, 0.1, 0.0]).repeat(b, 1),
                "jaw_params": torch.stack([level * 0.2, torch.zeros(b), torch.zeros(b)], dim=1),
                "eyelid_params": torch.tensor([0.25, 0.75]).repeat(b, 1),
                "shape_params": torch.zeros(b, 300), "cam": torch.zeros(b, 3)}


def _video_manifest(tmp_path, **video):
    make_video(tmp_path / "raw" / "v.mp4", **video)
    make_wav(tmp_path / "raw" / "a.wav", seconds=0.2)
    return Manifest.init(tmp_path / "m", [tmp_path / "raw"])[0]


def test_fake_smirk_to_motion_at_25fps(tmp_path):
    manifest = _video_manifest(tmp_path, frames=10, fps=25)
    fake = FakeSmirk()
    summary = run_stage(manifest, SmirkStage(extractor=SmirkExtractor(fake, batch_size=4)), progress=False)
    assert (summary.done, summary.failed) == (1, 1)
    audio_item, video_item = manifest.items  # sorted: a.wav, v.mp4
    assert "not video" in manifest.results("smirk")[audio_item.id].error
    out = manifest.results("smirk")[video_item.id].output
    assert out["frames"] == 10 and out["source_fps"] == 25.0 and out["source_frames"] == 10
    assert fake.batches == [4, 4, 2]
    motion = load_motion(manifest.root / out["motion"]).motion
    levels = motion[:, 0]  # the fake puts each frame's grey level here ...
    np.testing.assert_allclose(levels, np.arange(10) * 20 / 255.0, atol=3 / 255)  # (H.264's YUV rounding)
    np.testing.assert_allclose(motion[:, EXPR], levels[:, None] * np.arange(1, 51)[None], rtol=1e-5)
    np.testing.assert_allclose(motion[:, JAW], np.stack([levels * 0.2, 0 * levels, 0 * levels], 1), atol=1e-6)
    np.testing.assert_allclose(motion[:, GLOBAL], [[0.0, 0.1, 0.0]] * 10, atol=1e-6)
    np.testing.assert_allclose(motion[:, EYELIDS], [[0.25, 0.75]] * 10, atol=1e-6)


def test_fake_smirk_at_50fps_is_resampled(tmp_path):
    manifest = _video_manifest(tmp_path, frames=12, fps=50)
    run_stage(manifest, SmirkStage(extractor=SmirkExtractor(FakeSmirk())), progress=False)
    out = manifest.results("smirk")[manifest.items[1].id].output
    assert (out["source_fps"], out["source_frames"], out["frames"]) == (50.0, 12, 6)
    motion = load_motion(manifest.root / out["motion"]).motion
    levels = np.arange(0, 12, 2) * 20 / 255.0  # every other source frame
    np.testing.assert_allclose(motion[:, 0], levels, atol=0.02)


def test_detector_gaps_are_filled_or_fail_the_video(tmp_path):
    manifest = _video_manifest(tmp_path, frames=10, fps=25)
    video = manifest.items[1].source
    frames_seen = []

    def detector(frame):
        frames_seen.append(frame.shape)
        return None if len(frames_seen) in (1, 5) else np.array([[8.0, 8.0], [24.0, 24.0]])

    extractor = SmirkExtractor(FakeSmirk(), detector=detector, max_missing_face_ratio=0.2)
    track = extractor.extract(video)
    assert track.missing_face_frames == 2 and track.params["expression_params"].shape == (10, 50)
    assert frames_seen == [(32, 32, 3)] * 10

    frames_seen.clear()
    strict = SmirkExtractor(FakeSmirk(), detector=detector, max_missing_face_ratio=0.1)
    with pytest.raises(ItemError, match="no face in 2 of 10 frames"):
        strict.extract(video)


def test_encoder_missing_outputs_fail_the_item(tmp_path):
    manifest = _video_manifest(tmp_path, frames=3, fps=25)
    extractor = SmirkExtractor(lambda x: {"expression_params": torch.zeros(x.shape[0], 50)})
    with pytest.raises(ItemError, match=r"lacks \['pose_params', 'jaw_params'\]"):
        extractor.extract(manifest.items[1].source)
