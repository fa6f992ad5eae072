"""Stage ``emotion``: the acoustic emotion of each utterance, from a speech-emotion-recognition (SER) classifier.

FLAME-QA labels utterances with six emotions: neutral, happy, sad, surprised, contemptuous, curious. SER
models are trained on other label sets (RAVDESS/TESS 7-8 classes, CREMA-D 6, IEMOCAP 4, emotion2vec 9), so
their labels are mapped (:data:`DEFAULT_LABEL_MAP`, keys normalised by :func:`normalize_label`):

================================================  ==============  ==================================================
SER labels                                        FLAME-QA        why
================================================  ==============  ==================================================
neutral, neu, calm, normal                        neutral         RAVDESS "calm" is a low-arousal neutral delivery
happy, hap, happiness, joy, excited, exc, amused  happy           IEMOCAP practice merges "excited" into "happy"
sad, sadness                                      sad
surprise(d), sur, ps (TESS "pleasant surprise")   surprised
disgust(ed), dis, contempt                        contemptuous    both are rejection displays (nose wrinkle, lip raise)
curious, curiosity, interest(ed)                  curious         only custom models have it; SER sets do not
angry, anger, ang, fear(ful), fea, frustrated,    none            no counterpart: anger is high-arousal, not contempt;
fru, other, unknown                                               fear is not surprise; "other" is an abstention
================================================  ==============  ==================================================

Probabilities of labels with the same target are summed (calm + neutral count for neutral); the emotion is the
best of those sums. When a label with no counterpart is more probable than that best sum, the ``unmapped``
option decides: ``"none"`` (default) records no emotion (the filter's ``require_acoustic_emotion`` can drop such
items), ``"best_mapped"`` keeps the best mapped emotion anyway. "curious" is mostly a
semantic category that audio alone rarely shows (the seed's Semantic-Emotion Gap), so the LLM stage labels
the text emotion too. A model whose labels are not in the table is refused at load time, with the unknown
labels listed, until the config's ``label_map`` maps them (to an emotion or to null).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from a2llm.data.builder.manifest import Record
from a2llm.data.builder.media import read_wav, resample
from a2llm.data.builder.runner import Stage
from a2llm.data.builder.stages._common import load_pretrained, resolve_device, resolve_dtype

#: FLAME-QA's emotion classes, in the seed's order.
EMOTIONS = ("neutral", "happy", "sad", "surprised", "contemptuous", "curious")


def _table(pairs: Mapping[str | None, Sequence[str]]) -> dict[str, str | None]:
    return {label: target for target, labels in pairs.items() for label in labels}


#: Normalised SER label -> FLAME-QA emotion (None: no counterpart).
DEFAULT_LABEL_MAP: dict[str, str | None] = _table({
    "neutral": ("neutral", "neu", "calm", "normal"),
    "happy": ("happy", "hap", "happiness", "joy", "joyful", "excited", "exc", "amused", "amusement"),
    "sad": ("sad", "sadness"),
    "surprised": ("surprise", "surprised", "sur", "ps", "pleasant_surprise", "pleasant_surprised"),
    "contemptuous": ("disgust", "disgusted", "dis", "contempt", "contemptuous"),
    "curious": ("curious", "curiosity", "interest", "interested"),
    None: ("angry", "anger", "ang", "fear", "fearful", "fea", "frustrated", "frustration", "fru",
           "other", "oth", "unknown", "unk"),
})


def normalize_label(label: str) -> str:
    """Canonical form of a classifier label: lower case, the part after a ``/`` (emotion2vec writes
    ``"生气/angry"``), runs of other characters than letters and digits turned into ``_``. Digits stay:
    generic labels such as ``LABEL_0`` and ``LABEL_1`` must not collapse into one."""
    label = label.strip().lower().rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "_", label).strip("_")


def resolve_label_map(labels: Sequence[str], overrides: Mapping[str, str | None] | None = None
                      ) -> dict[str, str | None]:
    """Map every label of a classifier to a FLAME-QA emotion or None.

    Args:
        labels: the classifier's labels (``config.id2label`` values).
        overrides: raw or normalised label -> emotion or None; wins over the default table.

    Returns:
        raw label -> emotion or None.

    Raises:
        ValueError: an override targets something that is not a FLAME-QA emotion, or a label is in neither
            the overrides nor the default table.
    """
    extra = {normalize_label(k): v for k, v in (overrides or {}).items()}
    bad = {k: v for k, v in extra.items() if v is not None and v not in EMOTIONS}
    if bad:
        raise ValueError(f"label_map targets must be one of {EMOTIONS} or null, got {bad}")
    table = {**DEFAULT_LABEL_MAP, **extra}
    unknown = [lab for lab in labels if normalize_label(lab) not in table]
    if unknown:
        raise ValueError(
            f"the emotion classifier has labels with no known FLAME-QA counterpart: {unknown}. Map them in the "
            f"config, e.g. \"emotion\": {{\"label_map\": {{{', '.join(repr(u) + ': null' for u in unknown)}}}}} "
            f"(targets: {list(EMOTIONS)} or null)")
    return {lab: table[normalize_label(lab)] for lab in labels}


@dataclass(frozen=True)
class EmotionResult:
    """An utterance's emotion in FLAME-QA terms.

    Attributes:
        emotion: one of :data:`EMOTIONS`, or None (a label with no counterpart won and the policy is "none").
        scores: FLAME-QA emotion -> summed probability of the labels mapped to it.
        top_label: the classifier's most probable raw label.
        unmapped_mass: total probability of labels with no counterpart.
    """

    emotion: str | None
    scores: dict[str, float]
    top_label: str
    unmapped_mass: float


def map_scores(raw: Mapping[str, float], label_map: Mapping[str, str | None], unmapped: str = "none"
               ) -> EmotionResult:
    """Turn a classifier's label probabilities into an :class:`EmotionResult`.

    Args:
        raw: raw label -> probability (summing to 1).
        label_map: from :func:`resolve_label_map`.
        unmapped: ``"none"`` or ``"best_mapped"`` (see the module docstring).
    """
    if unmapped not in ("none", "best_mapped"):
        raise ValueError(f"unmapped must be 'none' or 'best_mapped', got {unmapped!r}")
    scores = dict.fromkeys(EMOTIONS, 0.0)
    unmapped_labels: dict[str, float] = {}
    for label, p in raw.items():
        target = label_map[label]
        if target is None:
            unmapped_labels[label] = float(p)
        else:
            scores[target] += float(p)
    best = max(scores, key=scores.__getitem__)
    # Each unmapped label competes on its own: "angry" and "fearful" are different emotions, so their
    # probabilities are not pooled into one "other" bucket that could outvote a real emotion.
    beaten = any(p > scores[best] for p in unmapped_labels.values())
    emotion: str | None = best
    if (beaten and unmapped == "none") or scores[best] == 0.0:  # 0.0: every label is unmapped
        emotion = None
    top = max(raw, key=raw.__getitem__)
    lost = sum(unmapped_labels.values())
    return EmotionResult(emotion=emotion, scores=scores, top_label=top, unmapped_mass=lost)


class EmotionModel(Protocol):
    """What the ``emotion`` stage needs of a classifier."""

    name: str
    labels: Sequence[str]

    def classify(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """[N] float32 mono audio -> raw label -> probability."""
        ...


class AudioEmotionClassifier:
    """A transformers audio-classification model behind the :class:`EmotionModel` interface.

    Args:
        model: an ``AutoModelForAudioClassification`` model (on its device, eval mode).
        feature_extractor: its ``AutoFeatureExtractor``.
        max_seconds: only the first this many seconds are classified (bounds memory on long clips).
        name: what to record as the model in outputs.
    """

    def __init__(self, model: Any, feature_extractor: Any, *, max_seconds: float = 30.0, name: str | None = None):
        self.model = model
        self.feature_extractor = feature_extractor
        self.max_seconds = max_seconds
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        id2label = model.config.id2label
        self.labels: list[str] = [id2label[i] for i in range(len(id2label))]

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "auto", dtype: str = "float32",
                        max_seconds: float = 30.0) -> AudioEmotionClassifier:
        """Load an audio-classification checkpoint (Hugging Face id or local folder)."""
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        device = resolve_device(device)
        model, info = load_pretrained("emotion", name_or_path, lambda: AutoModelForAudioClassification.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype, device), output_loading_info=True))
        # SER checkpoints shared with custom heads load "fine" into the Auto class with a randomly
        # initialised classifier, which would label every utterance by chance: refuse them instead.
        missing = sorted(k for k in info["missing_keys"] if "masked_spec_embed" not in k)
        if missing:
            raise ValueError(f"the emotion model {name_or_path!r} does not hold weights for {missing} of "
                             f"{type(model).__name__}; its classification head would be random. Use a checkpoint "
                             "saved from AutoModelForAudioClassification (see docs/BUILDER.md)")
        fe = load_pretrained("emotion", name_or_path, lambda: AutoFeatureExtractor.from_pretrained(name_or_path))
        return cls(model.to(device).eval(), fe, max_seconds=max_seconds, name=name_or_path)

    def classify(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        import torch

        rate = int(getattr(self.feature_extractor, "sampling_rate", sample_rate))
        audio = resample(audio, sample_rate, rate)[: int(self.max_seconds * rate)]
        inputs = self.feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
        inputs = {k: (v.to(self.model.device, self.model.dtype) if v.is_floating_point() else v.to(self.model.device))
                  for k, v in inputs.items()}
        with torch.inference_mode():
            probs = torch.softmax(self.model(**inputs).logits[0].float(), dim=-1).cpu().numpy()
        return {label: float(p) for label, p in zip(self.labels, probs)}


@dataclass(frozen=True)
class EmotionConfig:
    """Options of the ``emotion`` stage.

    Attributes:
        model: Hugging Face id or local folder of an audio-classification SER model.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        dtype: torch dtype name (``"float32"`` by default: SER models are small).
        label_map: extra or overriding label -> emotion (or null) entries.
        unmapped: ``"none"`` or ``"best_mapped"``: what to do when the top label has no counterpart.
        max_seconds: classify at most this many seconds of each utterance.
    """

    model: str = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition"
    device: str = "auto"
    dtype: str = "float32"
    label_map: dict[str, str | None] = field(default_factory=dict)
    unmapped: str = "none"
    max_seconds: float = 30.0


class EmotionStage(Stage):
    """Classify ``audio/audio.wav``.

    Output: ``emotion`` (FLAME-QA emotion or null), ``scores`` (per FLAME-QA emotion), ``top_label`` and
    ``raw_scores`` (the classifier's own), ``unmapped_mass``, ``model``.

    Args:
        config: options (used to load the model when ``model`` is not given).
        model: an already-constructed :class:`EmotionModel`, used as is.
    """

    name = "emotion"
    requires = ("audio",)

    def __init__(self, config: EmotionConfig | None = None, *, model: EmotionModel | None = None):
        self.config = config or EmotionConfig()
        if self.config.unmapped not in ("none", "best_mapped"):
            raise ValueError(f"emotion.unmapped must be 'none' or 'best_mapped', got {self.config.unmapped!r}")
        self.model = model
        self.label_map: dict[str, str | None] = {}

    def load(self) -> None:
        if self.model is None:
            c = self.config
            self.model = AudioEmotionClassifier.from_pretrained(c.model, device=c.device, dtype=c.dtype,
                                                                max_seconds=c.max_seconds)
        self.label_map = resolve_label_map(self.model.labels, self.config.label_map)

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        assert self.model is not None, "load() was not called"
        audio, rate = read_wav(record.path(record.output("audio")["audio"]))
        raw = self.model.classify(audio, rate)
        result = map_scores(raw, self.label_map, self.config.unmapped)
        return {"emotion": result.emotion, "scores": result.scores, "top_label": result.top_label,
                "raw_scores": raw, "unmapped_mass": result.unmapped_mass, "model": self.model.name}
