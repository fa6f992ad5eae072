"""One head-model interface over FLAME-like parametric heads.

Both heads of the project (the procedural open default head and real FLAME) are instances of
:class:`HeadModel`, built from the same arrays; only their loaders differ. Skinning is smplx's
functional ``lbs`` over a FLAME-style kinematic tree of five joints (root, neck, jaw, left eye,
right eye), so the two heads share one forward pass.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import batch_rodrigues, lbs

from a2llm.motion.layout import EXPR, EYELIDS, GLOBAL, JAW, MOTION_DIM, NUM_EXPR

#: Region names every head provides (vertex index arrays).
REGIONS = ("lips", "face", "upper_face")
#: Landmark names every head provides (one vertex index each).
LANDMARKS = ("upper_lip", "lower_lip", "mouth_left", "mouth_right")
#: FLAME joint order; the kinematic tree is root -> neck -> (jaw, left eye, right eye).
JOINTS = ("root", "neck", "jaw", "left_eye", "right_eye")
PARENTS = (-1, 0, 1, 1, 1)


@dataclass
class HeadData:
    """Arrays that define a head. Shapes use V vertices, F faces, J = 5 joints.

    Attributes:
        name: short identifier recorded in checkpoints ("open-head-v1", "flame2020", ...).
        template: [V, 3] neutral vertices in metres (FLAME axes: x left, y up, z forward).
        faces: [F, 3] triangle vertex indices.
        expr_dirs: [V, 3, 50] expression blendshapes.
        J_regressor: [J, V] joint regressor.
        lbs_weights: [V, J] skinning weights (rows sum to 1).
        posedirs: [(J-1)*9, V*3] pose-corrective blendshapes, or None for none.
        eyelid_dirs: [2, V, 3] left/right eyelid-closing blendshapes, or None if the head has none.
        regions: name -> vertex indices; must contain :data:`REGIONS`.
        landmarks: name -> vertex index; must contain :data:`LANDMARKS`.
        vertex_colors: [V, 3] float in [0, 1] for rendering, or None (the renderer picks a skin tone).
        global_joint: the joint the motion's global rotation turns: "root" (FLAME: the whole mesh turns) or
            "neck" (a bust: the head turns on the neck, root-weighted shoulders stay still).
        frame: [2, 3] min and max corners of the box the renderer's camera should show, or None (framed
            from the head's width).
    """

    name: str
    template: np.ndarray
    faces: np.ndarray
    expr_dirs: np.ndarray
    J_regressor: np.ndarray
    lbs_weights: np.ndarray
    posedirs: np.ndarray | None = None
    eyelid_dirs: np.ndarray | None = None
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    landmarks: dict[str, int] = field(default_factory=dict)
    vertex_colors: np.ndarray | None = None
    global_joint: str = "root"
    frame: np.ndarray | None = None

    def validate(self) -> None:
        """Raise ValueError when arrays disagree in shape or a required region/landmark is missing."""
        V = self.template.shape[0]
        checks = [
            (self.template.shape == (V, 3), f"template must be [V, 3], got {self.template.shape}"),
            (self.faces.ndim == 2 and self.faces.shape[1] == 3, f"faces must be [F, 3], got {self.faces.shape}"),
            (self.faces.max() < V and self.faces.min() >= 0, "faces index vertices out of range"),
            (self.expr_dirs.shape == (V, 3, NUM_EXPR), f"expr_dirs must be [{V}, 3, {NUM_EXPR}], got {self.expr_dirs.shape}"),
            (self.J_regressor.shape == (len(JOINTS), V), f"J_regressor must be [5, {V}], got {self.J_regressor.shape}"),
            (self.lbs_weights.shape == (V, len(JOINTS)), f"lbs_weights must be [{V}, 5], got {self.lbs_weights.shape}"),
            (self.posedirs is None or self.posedirs.shape == ((len(JOINTS) - 1) * 9, V * 3),
             f"posedirs must be [36, {V * 3}]"),
            (self.eyelid_dirs is None or self.eyelid_dirs.shape == (2, V, 3), f"eyelid_dirs must be [2, {V}, 3]"),
            (self.vertex_colors is None or self.vertex_colors.shape == (V, 3), f"vertex_colors must be [{V}, 3]"),
            (self.global_joint in ("root", "neck"), f"global_joint must be 'root' or 'neck', got {self.global_joint!r}"),
            (self.frame is None or np.shape(self.frame) == (2, 3), "frame must be [2, 3] (min and max corners)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"head {self.name!r}: {msg}")
        for r in REGIONS:
            if r not in self.regions or len(self.regions[r]) == 0:
                raise ValueError(f"head {self.name!r}: region {r!r} is missing or empty")
        for k in LANDMARKS:
            if k not in self.landmarks:
                raise ValueError(f"head {self.name!r}: landmark {k!r} is missing")

    # --- npz round trip (no pickles: safe to load from anywhere) ---------------------------------
    def save_npz(self, path: str | Path) -> None:
        arrays = {
            "name": np.array(self.name),
            "template": self.template.astype(np.float32),
            "faces": self.faces.astype(np.int32),
            "expr_dirs": self.expr_dirs.astype(np.float32),
            "J_regressor": self.J_regressor.astype(np.float32),
            "lbs_weights": self.lbs_weights.astype(np.float32),
        }
        if self.posedirs is not None:
            arrays["posedirs"] = self.posedirs.astype(np.float32)
        if self.eyelid_dirs is not None:
            arrays["eyelid_dirs"] = self.eyelid_dirs.astype(np.float32)
        if self.vertex_colors is not None:
            arrays["vertex_colors"] = self.vertex_colors.astype(np.float32)
        if self.global_joint != "root":
            arrays["global_joint"] = np.array(self.global_joint)
        if self.frame is not None:
            arrays["frame"] = np.asarray(self.frame, np.float32)
        for k, v in self.regions.items():
            arrays[f"region_{k}"] = np.asarray(v, dtype=np.int32)
        for k, v in self.landmarks.items():
            arrays[f"landmark_{k}"] = np.array(int(v), dtype=np.int32)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load_npz(cls, path: str | Path) -> "HeadData":
        with np.load(path, allow_pickle=False) as z:
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            data = cls(
                name=str(z["name"]),
                template=z["template"],
                faces=z["faces"].astype(np.int64),
                expr_dirs=z["expr_dirs"],
                J_regressor=z["J_regressor"],
                lbs_weights=z["lbs_weights"],
                posedirs=get("posedirs"),
                eyelid_dirs=get("eyelid_dirs"),
                vertex_colors=get("vertex_colors"),
                global_joint=str(z["global_joint"]) if "global_joint" in z.files else "root",
                frame=get("frame"),
                regions={k[len("region_"):]: z[k].astype(np.int64) for k in z.files if k.startswith("region_")},
                landmarks={k[len("landmark_"):]: int(z[k]) for k in z.files if k.startswith("landmark_")},
            )
        data.validate()
        return data


class HeadModel(torch.nn.Module):
    """Motion parameters ``[..., 58]`` -> mesh vertices ``[..., V, 3]`` (metres).

    ``forward`` is differentiable (the motion tokenizer's vertex losses go through it);
    :meth:`vertices` is the numpy convenience used by the renderer and the metrics.
    """

    def __init__(self, data: HeadData):
        super().__init__()
        data.validate()
        self.name = data.name
        self.faces = np.asarray(data.faces, dtype=np.int64)
        self.regions = {k: np.asarray(v, dtype=np.int64) for k, v in data.regions.items()}
        self.landmarks = {k: int(v) for k, v in data.landmarks.items()}
        self.vertex_colors = data.vertex_colors
        self.frame = None if data.frame is None else np.asarray(data.frame, np.float32)
        self.global_joint = data.global_joint
        self._global_index = JOINTS.index(data.global_joint)   # 0 (root) or 1 (neck)
        self.has_eyelids = data.eyelid_dirs is not None
        self._warned_eyelids = False
        V = data.template.shape[0]
        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.register_buffer("template", f32(data.template), persistent=False)
        self.register_buffer("expr_dirs", f32(data.expr_dirs), persistent=False)
        self.register_buffer("J_regressor", f32(data.J_regressor), persistent=False)
        self.register_buffer("lbs_weights", f32(data.lbs_weights), persistent=False)
        posedirs = data.posedirs if data.posedirs is not None else np.zeros((36, V * 3), np.float32)
        self.register_buffer("posedirs", f32(posedirs), persistent=False)
        eyelids = data.eyelid_dirs if data.eyelid_dirs is not None else np.zeros((2, V, 3), np.float32)
        self.register_buffer("eyelid_dirs", f32(eyelids), persistent=False)
        self.register_buffer("parents", torch.tensor(PARENTS, dtype=torch.long), persistent=False)

    @property
    def num_vertices(self) -> int:
        return int(self.template.shape[0])

    def forward(self, motion: torch.Tensor, canonical: bool = False) -> torch.Tensor:
        """Skin the head.

        Args:
            motion: [..., 58] motion parameters (DESIGN.md layout).
            canonical: when True the global rotation is ignored (canonical zero-pose space,
                where the metrics and the tokenizer's vertex losses are computed).

        Returns:
            [..., V, 3] vertices in metres, same dtype and device as ``motion``.
        """
        if motion.shape[-1] != MOTION_DIM:
            raise ValueError(f"motion must end in {MOTION_DIM} parameters, got shape {tuple(motion.shape)}")
        lead = motion.shape[:-1]
        m = motion.reshape(-1, MOTION_DIM)
        B = m.shape[0]
        if B == 0:
            return motion.new_zeros(*lead, self.num_vertices, 3)
        dtype = m.dtype
        lids = m[:, EYELIDS]
        if not self.has_eyelids and bool((lids != 0).any()) and not self._warned_eyelids:
            warnings.warn(f"head {self.name!r} has no eyelid blendshapes (l_eyelid.npy / r_eyelid.npy); "
                          "eyelid columns are ignored", stacklevel=2)
            self._warned_eyelids = True
        v_template = self.template.to(dtype) + torch.einsum("bk,kvc->bvc", lids, self.eyelid_dirs.to(dtype))
        glob = torch.zeros_like(m[:, GLOBAL]) if canonical else m[:, GLOBAL]
        zeros = torch.zeros_like(glob)
        root, neck = (glob, zeros) if self._global_index == 0 else (zeros, glob)
        pose = torch.cat([root, neck, m[:, JAW], zeros, zeros], dim=1)
        verts, _ = lbs(m[:, EXPR], pose, v_template, self.expr_dirs.to(dtype), self.posedirs.to(dtype),
                       self.J_regressor.to(dtype), self.parents, self.lbs_weights.to(dtype))
        return verts.reshape(*lead, self.num_vertices, 3)

    def skin_subset(self, motion: torch.Tensor, idx: torch.Tensor, canonical: bool = True) -> torch.Tensor:
        """Vertices ``idx`` only: [..., 58] -> [..., len(idx), 3]; equals ``forward(...)[..., idx, :]``.

        The motion layout poses only two joints — global rotation (root, or neck for a bust) and jaw; the
        others stay at rest — so linear blend skinning reduces exactly to
        ``v' = v + w_jaw (R_jaw (v - j_jaw) + j_jaw - v)`` followed by ``R_g (v' - j_root) + j_root``; for a
        neck-turned head the second step is ``v' + (1 - w_root) (R_g (v' - j_neck) + j_neck - v')``, exact as
        long as no vertex has both root and jaw weight.
        Joints come from the regressor applied to the template and blendshapes before they are
        expanded per vertex (J = R t + (R E) psi). The cost is O(len(idx)) instead of a [B, V, 4, 4]
        transform per vertex, which makes the tokenizer's vertex losses affordable on a CPU.
        """
        lead = motion.shape[:-1]
        m = motion.reshape(-1, MOTION_DIM)
        dtype = m.dtype
        B = m.shape[0]
        expr, lids = m[:, EXPR], m[:, EYELIDS]
        R = self.J_regressor.to(dtype)
        J = (R @ self.template.to(dtype)).expand(B, -1, -1) \
            + torch.einsum("bk,jck->bjc", expr, torch.einsum("jv,vck->jck", R, self.expr_dirs.to(dtype))) \
            + torch.einsum("bk,jck->bjc", lids, torch.einsum("jv,kvc->jck", R, self.eyelid_dirs.to(dtype)))
        n = len(idx)
        v = (self.template[idx].to(dtype) + (expr @ self.expr_dirs[idx].reshape(n * 3, -1).T.to(dtype)).view(B, n, 3)
             + torch.einsum("bk,kvc->bvc", lids, self.eyelid_dirs[:, idx].to(dtype)))
        rot_jaw = batch_rodrigues(m[:, JAW])                                        # [B, 3, 3]
        # Pose correctives (FLAME): only the jaw's rotation differs from identity among joints 1..4.
        feature = torch.zeros(B, 4, 3, 3, dtype=dtype, device=m.device)
        feature[:, 1] = rot_jaw - torch.eye(3, dtype=dtype, device=m.device)
        posedirs = self.posedirs.view(36, -1, 3)[:, idx].reshape(36, -1).to(dtype)
        v = v + (feature.reshape(B, 36) @ posedirs).view(B, n, 3)
        j_jaw = J[:, 2:3]
        jawed = torch.einsum("brc,bvc->bvr", rot_jaw, v - j_jaw) + j_jaw
        v = v + self.lbs_weights[idx, 2].to(dtype)[None, :, None] * (jawed - v)
        if not canonical:
            gi = self._global_index
            rot_g, j_g = batch_rodrigues(m[:, GLOBAL]), J[:, gi:gi + 1]
            turned = torch.einsum("brc,bvc->bvr", rot_g, v - j_g) + j_g
            v = turned if gi == 0 else v + (1 - self.lbs_weights[idx, 0].to(dtype))[None, :, None] * (turned - v)
        return v.reshape(*lead, n, 3)

    @torch.no_grad()
    def vertices(self, motion: np.ndarray, canonical: bool = False, chunk: int = 512) -> np.ndarray:
        """numpy wrapper of :meth:`forward`: [T, 58] -> [T, V, 3] float32, in chunks to bound memory."""
        motion = np.asarray(motion, dtype=np.float32)
        out = [self.forward(torch.from_numpy(motion[i:i + chunk]), canonical=canonical).numpy()
               for i in range(0, len(motion), chunk)]
        return np.concatenate(out, 0) if out else np.zeros((0, self.num_vertices, 3), np.float32)

    def neutral(self) -> np.ndarray:
        """[V, 3] the neutral template (all parameters zero)."""
        return self.template.numpy().copy()
