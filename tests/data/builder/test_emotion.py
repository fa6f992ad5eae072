"""Label mapping to FLAME-QA's six emotions, and the emotion stage with a tiny wav2vec2 classifier."""
from __future__ import annotations

import numpy as np
import pytest

from a2llm.data.builder import Manifest, run_stage
from a2llm.data.builder.stages import EmotionStage
from a2llm.data.builder.stages.emotion import (EMOTIONS, AudioEmotionClassifier, EmotionConfig, map_scores,
                                               normalize_label, resolve_label_map)

from .helpers import RAVDESS_LABELS, make_wav, seed, tiny_ser


def test_normalize_label():
    assert normalize_label("生气/angry") == "angry"  # emotion2vec's bilingual labels
    assert normalize_label(" Pleasant Surprise ") == "pleasant_surprise"
    assert normalize_label("NEU") == "neu"
    assert normalize_label("LABEL_0") != normalize_label("LABEL_1")


def test_common_label_sets_map_as_documented():
    assert resolve_label_map(RAVDESS_LABELS) == {
        "angry": None, "calm": "neutral", "disgust": "contemptuous", "fearful": None, "happy": "happy",
        "neutral": "neutral", "sad": "sad", "surprised": "surprised"}
    assert resolve_label_map(["neu", "hap", "ang", "sad"]) == {"neu": "neutral", "hap": "happy", "ang": None,
                                                               "sad": "sad"}  # IEMOCAP 4-class
    assert resolve_label_map(["ps", "disgust", "fear"])["ps"] == "surprised"  # TESS


def test_unknown_labels_are_refused_until_mapped():
    with pytest.raises(ValueError, match=r"no known FLAME-QA counterpart: \['LABEL_0'\].*label_map"):
        resolve_label_map(["LABEL_0", "happy"])
    assert resolve_label_map(["LABEL_0", "happy"], {"LABEL_0": "curious"})["LABEL_0"] == "curious"
    with pytest.raises(ValueError, match="targets must be one of"):
        resolve_label_map(["happy"], {"happy": "joyous"})


def test_map_scores_sums_same_targets_and_handles_unmapped_labels():
    lm = resolve_label_map(RAVDESS_LABELS)
    probs = dict.fromkeys(RAVDESS_LABELS, 0.0)
    probs.update(calm=0.3, neutral=0.25, happy=0.45)  # happy is the top label, neutral the top emotion
    r = map_scores(probs, lm)
    assert r.emotion == "neutral" and r.scores["neutral"] == pytest.approx(0.55) and r.top_label == "happy"
    assert set(r.scores) == set(EMOTIONS)

    probs = dict.fromkeys(RAVDESS_LABELS, 0.0)
    probs.update(angry=0.5, disgust=0.3, fearful=0.2)
    assert map_scores(probs, lm, "none").emotion is None
    best = map_scores(probs, lm, "best_mapped")
    assert best.emotion == "contemptuous" and best.unmapped_mass == pytest.approx(0.7)

    only_unmapped = dict.fromkeys(RAVDESS_LABELS, 0.0) | {"angry": 1.0}
    assert map_scores(only_unmapped, lm, "best_mapped").emotion is None


@pytest.fixture(scope="module")
def ser_dir(tmp_path_factory):
    return tiny_ser(tmp_path_factory.mktemp("ser") / "m", favour="disgust")


def test_real_classifier_adapter(ser_dir):
    clf = AudioEmotionClassifier.from_pretrained(str(ser_dir), device="cpu")
    assert clf.labels == RAVDESS_LABELS
    audio = np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1
    probs = clf.classify(audio, 16000)
    assert set(probs) == set(RAVDESS_LABELS) and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(probs, key=probs.get) == "disgust"
    assert max(clf.classify(audio[:6000], 8000), key=probs.get) == "disgust"  # resampled to 16 kHz first


def test_emotion_stage_maps_disgust_to_contemptuous(ser_dir, tmp_path):
    make_wav(tmp_path / "raw" / "a.wav", seconds=0.5)
    manifest, _ = Manifest.init(tmp_path / "m", [tmp_path / "raw"])
    item = manifest.items[0]
    seed(manifest, "audio", {item.id: {"audio": str(item.source), "sample_rate": 16000}})
    stage = EmotionStage(EmotionConfig(model=str(ser_dir), device="cpu"))
    assert run_stage(manifest, stage, progress=False).done == 1  # the stage loads the model by path itself
    out = manifest.records(["emotion"])[0].output("emotion")
    assert out["emotion"] == "contemptuous" and out["top_label"] == "disgust"
    assert out["scores"]["contemptuous"] > 0.9 and set(out["raw_scores"]) == set(RAVDESS_LABELS)


def test_emotion_stage_refuses_a_model_with_unmapped_labels(tmp_path):
    folder = tiny_ser(tmp_path / "odd", labels=["LABEL_0", "LABEL_1"])
    stage = EmotionStage(EmotionConfig(model=str(folder), device="cpu"))
    with pytest.raises(ValueError, match="LABEL_0"):
        stage.load()
    ok = EmotionStage(EmotionConfig(model=str(folder), device="cpu",
                                    label_map={"LABEL_0": "neutral", "LABEL_1": None}))
    ok.load()
    assert ok.label_map == {"LABEL_0": "neutral", "LABEL_1": None}


def test_a_checkpoint_without_a_trained_head_is_refused(tmp_path):
    from transformers import Wav2Vec2Model

    folder = tiny_ser(tmp_path / "full")
    full = Wav2Vec2Model.from_pretrained(folder)  # the encoder only, as custom-head checkpoints effectively are
    full.save_pretrained(tmp_path / "headless")
    (tmp_path / "headless" / "preprocessor_config.json").write_bytes((folder / "preprocessor_config.json").read_bytes())
    with pytest.raises(ValueError, match="classification head would be random"):
        AudioEmotionClassifier.from_pretrained(str(tmp_path / "headless"), device="cpu")
