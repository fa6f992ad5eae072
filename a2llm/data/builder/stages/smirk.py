"""Stage ``smirk``: per-frame FLAME parameters from each video with SMIRK, saved as [T, 58] motion at 25 fps.

SMIRK (Retsinas et al., CVPR 2024; github.com/georgeretsi/smirk) is not a pip package: it is a repository
with an encoder module (``src/smirk_encoder.py``, needs ``timm``) and a checkpoint (``SMIRK_em1.pt``). Its
demo crops each frame around the face found by MediaPipe's face landmarker (box = landmark extent x 1.4,
resized to 224 x 224) and feeds RGB in [0, 1]. This stage does the same: it loads the encoder from the
configured repository and checkpoint, or stops with :class:`SmirkNotAvailable` saying what to install.

Per frame SMIRK gives ``expression_params`` (50), ``pose_params`` (3, global rotation), ``jaw_params`` (3),
``eyelid_params`` (2), which :func:`a2llm.motion.importers.smirk_to_motion` lays out as the project's motion;
frames at the video's rate are resampled to 25 fps (:func:`a2llm.motion.io.resample_motion`).
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2llm.data.builder.manifest import Record
from a2llm.data.builder.media import video_fps, video_frames
from a2llm.data.builder.runner import ItemError, Stage
from a2llm.data.builder.stages._common import resolve_device
from a2llm.motion.importers import smirk_to_motion
from a2llm.motion.io import resample_motion, save_motion
from a2llm.motion.layout import FPS

IMAGE_SIZE = 224  # SMIRK's encoder input
SMIRK_KEYS = ("expression_params", "pose_params", "jaw_params", "eyelid_params")

INSTALL_HELP = """\
To extract FLAME motion from video, install SMIRK (only its encoder is used; FLAME itself is not needed):
  git clone https://github.com/georgeretsi/smirk /opt/smirk
  pip install timm mediapipe            # the encoder's backbones; the face landmarker for cropping
  # the checkpoint (as SMIRK's quick_install.sh fetches it):
  cd /opt/smirk && mkdir -p pretrained_models && gdown --id 1T65uEd9dVLHgVw5KiUYL66NUee-MCzoE -O pretrained_models/
  # MediaPipe's face landmarker model, for the face crop:
  wget https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/latest/face_landmarker.task -P /opt/smirk/assets/
then point the builder at it, in the config file:
  {"smirk": {"repo": "/opt/smirk", "checkpoint": "/opt/smirk/pretrained_models/SMIRK_em1.pt"}}
or with the environment variable SMIRK_REPO=/opt/smirk (the checkpoint then defaults to
pretrained_models/SMIRK_em1.pt inside it). Videos that are already 224x224 face crops can skip the
landmarker with "crop": false."""


class SmirkNotAvailable(RuntimeError):
    """SMIRK (its repository, checkpoint or dependencies) is not installed or not configured."""

    def __init__(self, reason: str):
        super().__init__(f"SMIRK is not available: {reason}.\n{INSTALL_HELP}")


@dataclass(frozen=True)
class SmirkConfig:
    """Options of the ``smirk`` stage.

    Attributes:
        repo: SMIRK repository folder; None = the ``SMIRK_REPO`` environment variable.
        checkpoint: SMIRK checkpoint; None = ``<repo>/pretrained_models/SMIRK_em1.pt``.
        device: ``"auto"``, ``"cuda"``, ``"cpu"``, ...
        crop: crop each frame around the face (MediaPipe), as SMIRK's demo does with ``--crop``.
        landmarker: MediaPipe ``face_landmarker.task``; None = ``<repo>/assets/face_landmarker.task``.
        crop_scale: face box = landmark extent times this (SMIRK's demo: 1.4).
        batch_size: frames per encoder call.
        max_missing_face_ratio: fail a video when more of its frames than this have no face (frames without
            one reuse the nearest earlier box, or the first box for leading frames).
    """

    repo: str | None = None
    checkpoint: str | None = None
    device: str = "auto"
    crop: bool = True
    landmarker: str | None = None
    crop_scale: float = 1.4
    batch_size: int = 32
    max_missing_face_ratio: float = 0.1


# --------------------------------------------------------------------------- locating and loading SMIRK


@dataclass(frozen=True)
class SmirkPaths:
    """The files a real SMIRK run needs."""

    repo: Path
    checkpoint: Path
    landmarker: Path | None


def locate_smirk(config: SmirkConfig) -> SmirkPaths:
    """Find SMIRK's repository, checkpoint and (with ``crop``) the landmarker model, and check imports.

    Raises:
        SmirkNotAvailable: something is missing; the message says what and how to install it.
    """
    repo_str = config.repo or os.environ.get("SMIRK_REPO")
    if not repo_str:
        raise SmirkNotAvailable("no SMIRK repository is configured (smirk.repo in the config, or SMIRK_REPO)")
    repo = Path(repo_str).expanduser()
    if not (repo / "src" / "smirk_encoder.py").is_file():
        raise SmirkNotAvailable(f"{repo} is not a SMIRK checkout (no src/smirk_encoder.py in it)")
    checkpoint = Path(config.checkpoint).expanduser() if config.checkpoint else repo / "pretrained_models" / "SMIRK_em1.pt"
    if not checkpoint.is_file():
        raise SmirkNotAvailable(f"the SMIRK checkpoint {checkpoint} does not exist")
    if importlib.util.find_spec("timm") is None:
        raise SmirkNotAvailable("the Python package 'timm' (SMIRK's encoder backbones) is not installed")
    landmarker = None
    if config.crop:
        if importlib.util.find_spec("mediapipe") is None:
            raise SmirkNotAvailable("the Python package 'mediapipe' (face landmarks for the crop) is not installed")
        landmarker = Path(config.landmarker).expanduser() if config.landmarker else repo / "assets" / "face_landmarker.task"
        if not landmarker.is_file():
            raise SmirkNotAvailable(f"MediaPipe's face landmarker model {landmarker} does not exist")
    return SmirkPaths(repo=repo, checkpoint=checkpoint, landmarker=landmarker)


def load_smirk_encoder(paths: SmirkPaths, device: str) -> Any:
    """Build SMIRK's encoder from its repository and load the checkpoint's ``smirk_encoder.*`` tensors.

    Returns:
        The encoder (torch module, eval mode, on ``device``): images [B, 3, 224, 224] in [0, 1] -> dict of
        [B, D] parameter tensors.
    """
    import torch

    # Load the file as a module of its own name: SMIRK's package is called "src", which would clash.
    spec = importlib.util.spec_from_file_location("a2llm_smirk_encoder", paths.repo / "src" / "smirk_encoder.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    # SmirkEncoder asks timm for ImageNet-pretrained backbones, a download that the checkpoint overwrites
    # anyway; building them without pretrained weights keeps the stage offline.
    create_backbone = module.create_backbone
    module.create_backbone = lambda name, pretrained=True: create_backbone(name, pretrained=False)
    encoder = module.SmirkEncoder()
    try:
        state = torch.load(paths.checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise SmirkNotAvailable(f"{paths.checkpoint} could not be read as a tensor checkpoint: {exc}") from exc
    prefix = "smirk_encoder."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise SmirkNotAvailable(f"{paths.checkpoint} has no '{prefix}*' tensors; expected SMIRK's SMIRK_em1.pt")
    encoder.load_state_dict(weights)
    return encoder.to(device).eval()


class MediapipeFaceLandmarks:
    """MediaPipe's face landmarker: RGB frame -> [478, 2] landmark pixel coordinates, or None without a face.

    Args:
        model_path: ``face_landmarker.task``.
    """

    def __init__(self, model_path: Path):
        import mediapipe as mp
        from mediapipe.tasks import python as mp_python
        from mediapipe.tasks.python import vision

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=mp_python.BaseOptions(model_asset_path=str(model_path)), num_faces=1,
            min_face_detection_confidence=0.1, min_face_presence_confidence=0.1)  # SMIRK's demo settings
        self._detector = vision.FaceLandmarker.create_from_options(options)

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        result = self._detector.detect(image)
        if not result.face_landmarks:
            return None
        h, w = frame.shape[:2]
        return np.array([[p.x * w, p.y * h] for p in result.face_landmarks[0]], dtype=np.float64)


# --------------------------------------------------------------------------- frames -> SMIRK inputs


def face_box(landmarks: np.ndarray, scale: float) -> tuple[float, float, float]:
    """SMIRK's crop box from landmarks: (centre x, centre y, side) with side = mean extent x ``scale``.

    Args:
        landmarks: [N, 2] pixel coordinates.
    """
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    centre = (lo + hi) / 2.0
    side = float(int(((hi[0] - lo[0]) + (hi[1] - lo[1])) / 2.0 * scale))
    return float(centre[0]), float(centre[1]), side


def fill_boxes(boxes: list[tuple[float, float, float] | None]) -> list[tuple[float, float, float]]:
    """Give frames without a face the nearest earlier box (leading ones: the first box found).

    Raises:
        ItemError: no frame has a face.
    """
    first = next((b for b in boxes if b is not None), None)
    if first is None:
        raise ItemError("no face was found in any frame of the video")
    filled, last = [], first
    for b in boxes:
        last = b if b is not None else last
        filled.append(last)
    return filled


def to_encoder_input(frames: np.ndarray, boxes: list[tuple[float, float, float]] | None) -> Any:
    """Frames -> SMIRK input, cropped to the boxes (as SMIRK's similarity warp does) or resized whole.

    Args:
        frames: [B, H, W, 3] uint8 RGB.
        boxes: per frame (centre x, centre y, side) in pixels, or None to resize the whole frame.

    Returns:
        [B, 3, 224, 224] float32 tensor in [0, 1]; outside the frame is black, as in SMIRK's warp.
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    b, _, h, w = x.shape
    if boxes is None:
        return F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
    # With align_corners=True, normalised -1/+1 are the first/last pixel centres, so output pixels 0 and 223
    # land on the box edges cx -/+ side/2: the mapping of SMIRK's estimate_transform + warp.
    theta = torch.zeros(b, 2, 3)
    for i, (cx, cy, side) in enumerate(boxes):
        theta[i, 0, 0] = side / (w - 1)
        theta[i, 0, 2] = 2.0 * cx / (w - 1) - 1.0
        theta[i, 1, 1] = side / (h - 1)
        theta[i, 1, 2] = 2.0 * cy / (h - 1) - 1.0
    grid = F.affine_grid(theta, [b, 3, IMAGE_SIZE, IMAGE_SIZE], align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for f in frames:
        batch.append(f)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def _numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    return detach().float().cpu().numpy() if detach is not None else np.asarray(value, dtype=np.float32)


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class SmirkTrack:
    """SMIRK's parameters over a video.

    Attributes:
        params: ``expression_params`` [T, 50], ``pose_params`` [T, 3], ``jaw_params`` [T, 3],
            ``eyelid_params`` [T, 2] (absent if the encoder gives none), at the video's rate.
        fps: the video's frame rate.
        missing_face_frames: frames whose crop was borrowed from a neighbour.
    """

    params: dict[str, np.ndarray]
    fps: float
    missing_face_frames: int


class SmirkExtractor:
    """Runs a SMIRK encoder over a video's frames.

    Args:
        encoder: images [B, 3, 224, 224] in [0, 1] (torch) -> mapping with at least ``expression_params``,
            ``pose_params``, ``jaw_params`` (and usually ``eyelid_params``), each [B, D]. The real one comes
            from :func:`load_smirk_encoder`; any callable with this contract works.
        detector: RGB frame -> [N, 2] landmarks or None; None = no crop (frames are resized whole).
        device: where the encoder runs.
        batch_size: frames per encoder call.
        crop_scale: face box scale (1.4 in SMIRK's demo).
        max_missing_face_ratio: see :class:`SmirkConfig`.
        frames: video path -> iterator of [H, W, 3] uint8 RGB frames (default: ffmpeg via imageio).
        fps: video path -> frame rate (default: the container's).
    """

    def __init__(self, encoder: Callable[[Any], Mapping[str, Any]], *,
                 detector: Callable[[np.ndarray], np.ndarray | None] | None = None, device: str = "cpu",
                 batch_size: int = 32, crop_scale: float = 1.4, max_missing_face_ratio: float = 0.1,
                 frames: Callable[[Path], Iterable[np.ndarray]] = video_frames,
                 fps: Callable[[Path], float] = video_fps):
        self.encoder = encoder
        self.detector = detector
        self.device = device
        self.batch_size = batch_size
        self.crop_scale = crop_scale
        self.max_missing_face_ratio = max_missing_face_ratio
        self._frames = frames
        self._fps = fps

    def _boxes(self, video: Path) -> tuple[list[tuple[float, float, float]] | None, int]:
        """First pass: one face box per frame (None without a detector), and how many frames had no face."""
        if self.detector is None:
            return None, 0
        found: list[tuple[float, float, float] | None] = []
        for frame in self._frames(video):
            lm = self.detector(frame)
            found.append(face_box(lm, self.crop_scale) if lm is not None else None)
        missing = sum(b is None for b in found)
        if found and missing / len(found) > self.max_missing_face_ratio:
            raise ItemError(f"no face in {missing} of {len(found)} frames (more than "
                            f"max_missing_face_ratio={self.max_missing_face_ratio})",
                            {"missing_face_frames": missing, "frames": len(found)})
        return fill_boxes(found), missing

    def extract(self, video: Path) -> SmirkTrack:
        """Run SMIRK on every frame of ``video``.

        Frames are decoded twice when cropping (boxes first, then crops), so memory stays at one batch
        whatever the video's length.
        """
        import torch

        boxes, missing = self._boxes(video)
        chunks: dict[str, list[np.ndarray]] = {}
        start = 0
        for batch in _batches(self._frames(video), self.batch_size):
            batch_boxes = boxes[start:start + len(batch)] if boxes is not None else None
            start += len(batch)
            with torch.inference_mode():
                out = self.encoder(to_encoder_input(batch, batch_boxes).to(self.device))
            for key in SMIRK_KEYS:
                if key in out:
                    chunks.setdefault(key, []).append(_numpy(out[key]).reshape(len(batch), -1))
        if start == 0:
            raise ItemError(f"{video} has no frames")
        if boxes is not None and start != len(boxes):
            raise ItemError(f"{video} decoded to {len(boxes)} frames, then to {start}; the file may be damaged")
        absent = [k for k in SMIRK_KEYS[:3] if k not in chunks]
        if absent:
            raise ItemError(f"the SMIRK encoder's output lacks {absent}")
        params = {k: np.concatenate(v) for k, v in chunks.items()}
        return SmirkTrack(params=params, fps=self._fps(video), missing_face_frames=missing)


def track_to_motion(track: SmirkTrack) -> np.ndarray:
    """SMIRK parameters at the video's rate -> [T, 58] float32 motion at 25 fps."""
    p = track.params
    motion = smirk_to_motion(p["expression_params"], p["pose_params"], p["jaw_params"], p.get("eyelid_params"))
    return resample_motion(motion, track.fps, FPS)


# --------------------------------------------------------------------------- stage


class SmirkStage(Stage):
    """Write ``items/<id>/smirk/motion.npz`` (motion [T, 58] at 25 fps) for every video item.

    Output: ``motion`` (relative path), ``frames`` (T at 25 fps), ``source_fps``, ``source_frames``,
    ``missing_face_frames``. Audio-only items fail ("no video"): they have no face to track.

    Args:
        config: options (used to load SMIRK when ``extractor`` is not given).
        extractor: an already-constructed :class:`SmirkExtractor` (e.g. around a fake encoder in tests).
    """

    name = "smirk"
    requires = ()

    def __init__(self, config: SmirkConfig | None = None, *, extractor: SmirkExtractor | None = None):
        self.config = config or SmirkConfig()
        self.extractor = extractor

    def load(self) -> None:
        if self.extractor is not None:
            return
        c = self.config
        paths = locate_smirk(c)
        device = resolve_device(c.device)
        detector = MediapipeFaceLandmarks(paths.landmarker) if paths.landmarker is not None else None
        self.extractor = SmirkExtractor(load_smirk_encoder(paths, device), detector=detector, device=device,
                                        batch_size=c.batch_size, crop_scale=c.crop_scale,
                                        max_missing_face_ratio=c.max_missing_face_ratio)

    def process(self, record: Record, workdir: Path) -> dict[str, Any]:
        assert self.extractor is not None, "load() was not called"
        if record.kind != "video":
            raise ItemError(f"{record.source} is {record.kind}, not video: there is no face to track")
        track = self.extractor.extract(record.source)
        motion = track_to_motion(track)
        path = save_motion(workdir / "motion.npz", motion)
        return {"motion": record.relpath(path), "frames": int(motion.shape[0]), "source_fps": track.fps,
                "source_frames": int(track.params["expression_params"].shape[0]),
                "missing_face_frames": track.missing_face_frames}
