"""The motion tokenizer's reconstruction loss (paper appendix B, Eq. 7-10).

    L_rec = L_param + 1e5 (L_lips + L_face) + 1e2 (L_vel + L_acc)          (Eq. 7; L_vq is added by the caller)

* L_param (Eq. 8): MSE of the 58 motion parameters.
* L_lips, L_face (Eq. 9): vertex MSE (m²) over the head's lips region and an evenly spread subset of the rest of
  its face region, in canonical zero-pose space (global rotation removed).
* L_vel, L_acc (Eq. 10): MSE of the first and second temporal differences ΔV, Δ²V of the **full vertex
  sequence** — every vertex of the head mesh, canonical space — between reconstruction and ground truth.
* Beyond the paper, ``upper_dynamics`` (default 0: off) weights the same two differences taken on the head's
  upper-face vertices alone (an even subset of its ``upper_face`` region, canonical space): the brows and lids,
  whose acceleration the full-mesh terms dilute among ~5,000 vertices, and the part of the face whose twitching
  the metric ``upper_face_jitter`` measures (docs/TOKENIZER.md, "Upper-face smoothing").
* Beyond the paper, ``param_dynamics`` weights the same two differences taken on the 58 parameters (the
  smoothing this project used, at 1e2, before it followed Eq. 10). It is on by default at 10: at Eq. 10's
  1e2 the full-mesh terms are ~3e-4 of the loss and leave the upper face 4.9× as jittery as the truth after
  a short nano run; adding this term at 10 brings that to 2.2× at an unchanged MOD (docs/TOKENIZER.md,
  "Vertex-space smoothing"). Set it to 0 for Eq. 7 exactly.

The squared norms of Eq. 8-10 are read as means over their elements (frames × vertices × xyz), so the terms stay
comparable whatever the mesh size; the weights are those of Eq. 7. The full-mesh differences go through
:class:`MeshCoordinates`, an exact low-dimensional linear image of the canonical mesh, so they cost a matrix
product rather than skinning every vertex of every frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from smplx.lbs import batch_rodrigues
from torch import nn

from a2llm.head import HeadModel
from a2llm.motion.layout import EXPR, EYELIDS, JAW

#: Index of the jaw among the head's joints (root, neck, jaw, left eye, right eye).
_JAW_JOINT = 2


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 7, plus the parameter-space velocity / acceleration term (0 = off: Eq. 7 exactly)."""

    param: float = 1.0            # λ_param on L_param (Eq. 8)
    vertex: float = 1e5           # λ_lips = λ_face on L_lips + L_face (Eq. 9)
    dynamics: float = 1e2         # λ_vel = λ_acc on L_vel + L_acc of the full vertex sequence (Eq. 10)
    param_dynamics: float = 10.0  # not in the paper: on the velocity + acceleration MSE of the 58 parameters
    upper_dynamics: float = 0.0   # not in the paper: on the velocity + acceleration MSE of upper-face vertices (m²)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-frame errors ``err`` [B, T'] over the frames ``mask`` [B, >= T'] keeps (all when None)."""
    if mask is None:
        return err.mean()
    mask = mask[:, : err.shape[1]].to(err.dtype)
    return (err * mask).sum() / mask.sum().clamp_min(1)


def _mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """MSE of [B, T, ...] tensors over the frames ``mask`` [B, T] keeps."""
    return _masked_mean((a - b).square().flatten(2).mean(-1), mask)


def difference_masks(mask: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """[B, T] frame mask -> masks [B, T-1], [B, T-2] of the first / second differences whose frames are all real."""
    if mask is None:
        return None, None
    return mask[:, 1:] * mask[:, :-1], mask[:, 2:] * mask[:, 1:-1] * mask[:, :-2]


class MeshCoordinates(nn.Module):
    """Exact coordinates of the whole canonical mesh in a space of at most 619 dimensions.

    In canonical zero-pose space only the jaw joint rotates (global rotation is removed; neck and eyes stay at
    rest), so linear blend skinning of vertex ``v`` reduces to

        V_v = A_v y + w_v (R − I) (A_v − J) y,      y = [1, ψ (50), eyelids (2), vec(R − I) (9)]   (62)

    where A_v [3, 62] holds the template, expression and eyelid blendshapes and the jaw's pose correctives,
    J [3, 62] regresses the jaw joint from the same (it does not see the pose correctives), R is the jaw
    rotation and w_v the vertex's jaw skinning weight. The whole mesh, stacked to 3V numbers, is therefore a
    fixed linear map Φ [3V, 619] of the features φ = [y[1:] (61), vec((R − I) ⊗ y) (558)] (the constant
    template is left out: it cancels in every difference). With L [r, 619] such that LᵀL = ΦᵀΦ (an eigen
    factorisation computed once in float64), ``c = L φ`` keeps every distance of the mesh:

        ‖Σ_s a_s c_s‖² = ‖Σ_s a_s V_s‖²     (summed over all V vertices and xyz; any weights a_s)

    so the velocity and acceleration of all vertices cost a [N, 619] @ [619, r] product per frame instead of
    skinning V vertices (5,473 for the open head).
    """

    def __init__(self, head: HeadModel):
        super().__init__()
        f64 = torch.float64
        V = head.num_vertices
        template, expr = head.template.to(f64), head.expr_dirs.to(f64)                 # [V, 3], [V, 3, 50]
        lids = head.eyelid_dirs.to(f64).permute(1, 2, 0)                                 # [V, 3, 2]
        # Pose correctives of joint j sit in posedirs rows 9 (j-1) ... 9 j - 1 (FLAME's layout, joints 1..4).
        jaw_rows = slice(9 * (_JAW_JOINT - 1), 9 * _JAW_JOINT)
        pose = head.posedirs.to(f64).view(36, V, 3)[jaw_rows].permute(1, 2, 0)         # [V, 3, 9]
        A = torch.cat([template[:, :, None], expr, lids, pose], dim=2)                   # [V, 3, 62]
        regressor = head.J_regressor.to(f64)[_JAW_JOINT]                                 # [V]
        J = torch.einsum("v,vck->ck", regressor, A)
        J[:, -9:] = 0                                           # joints come from the shaped mesh, before correctives
        w = head.lbs_weights.to(f64)[:, _JAW_JOINT]                                      # [V]
        N = (A - J) * w[:, None, None]                                                   # [V, 3, 62]
        lin = A[:, :, 1:]                                                                # [V, 3, 61]
        # Gram matrix ΦᵀΦ by blocks. Feature (i, j, k) of the jaw part is (R − I)[i, j] y[k]; it moves axis i of
        # vertex v by N[v, j, k]. Hence jaw-jaw = I_3 ⊗ S and linear-jaw[c, (i, j, k)] = Σ_v lin[v, i, c] N[v, j, k].
        Nf = N.reshape(V, -1)                                                            # [V, 186]
        S = Nf.T @ Nf                                                                    # [186, 186]
        g_ll = lin.reshape(V * 3, -1).T @ lin.reshape(V * 3, -1)                         # [61, 61]
        g_lj = torch.einsum("vic,vjk->cijk", lin, N).reshape(lin.shape[2], -1)          # [61, 558]
        g_jj = torch.kron(torch.eye(3, dtype=f64), S)                                    # [558, 558]
        gram = torch.cat([torch.cat([g_ll, g_lj], 1), torch.cat([g_lj.T, g_jj], 1)], 0)  # [619, 619]
        eig, vec = torch.linalg.eigh(gram)
        keep = eig > eig.max() * 1e-12                           # the rest is round-off of a rank-deficient Gram
        L = eig[keep].sqrt()[:, None] * vec[:, keep].T                                   # [r, 619]
        self.register_buffer("L", L.to(torch.float32), persistent=False)
        self.num_vertices = V

    @property
    def dim(self) -> int:
        """r, the number of coordinates (the rank of the mesh's linear map)."""
        return int(self.L.shape[0])

    @staticmethod
    def features(motion: torch.Tensor) -> torch.Tensor:
        """φ: [..., 58] motion -> [..., 619] features the canonical mesh is linear in."""
        lead = motion.shape[:-1]
        m = motion.reshape(-1, motion.shape[-1])
        rot = batch_rodrigues(m[:, JAW]) - torch.eye(3, dtype=m.dtype, device=m.device)     # [N, 3, 3] R − I
        y = torch.cat([torch.ones_like(m[:, :1]), m[:, EXPR], m[:, EYELIDS], rot.flatten(1)], 1)   # [N, 62]
        jaw = (rot[:, :, :, None] * y[:, None, None, :]).flatten(1)                          # [N, 558]
        return torch.cat([y[:, 1:], jaw], 1).reshape(*lead, -1)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """[..., 58] motion -> [..., r] coordinates; squared distances equal those of the [V, 3] canonical meshes."""
        return self.features(motion) @ self.L.to(motion.dtype).T


class MotionLoss(nn.Module):
    """Eq. 7-10 on batches of motion.

    ``forward(pred, target, mask)``: ``pred`` and ``target`` [B, T, 58] motion, ``mask`` [B, T] (1 = real frame,
    0 = padding) or None. Returns scalar terms: ``param``, ``lips``, ``face`` (Eq. 8, 9), ``vel`` and ``acc``
    (Eq. 10: mean over real frame pairs / triples, all vertices and xyz of (ΔV̂ − ΔV)² and (Δ²V̂ − Δ²V)², m²),
    ``param_vel`` and ``param_acc`` (the same on the 58 parameters, weighted by ``weights.param_dynamics``) and
    ``total`` (Eq. 7 plus that term).
    """

    def __init__(self, head: HeadModel, weights: LossWeights = LossWeights(), face_vertices: int = 600):
        super().__init__()
        self.head, self.w = head, weights
        lips = np.asarray(head.regions["lips"])
        face = np.setdiff1d(head.regions["face"], lips)
        face = face[np.linspace(0, len(face) - 1, min(face_vertices, len(face))).round().astype(int)]
        self.n_lips = len(lips)
        self.register_buffer("idx", torch.from_numpy(np.concatenate([lips, face])), persistent=False)
        upper = np.asarray(head.regions.get("upper_face", []))
        if weights.upper_dynamics and not len(upper):
            raise ValueError("upper_dynamics needs a head with an 'upper_face' region")
        upper = upper[np.linspace(0, len(upper) - 1, min(face_vertices, len(upper))).round().astype(int)] \
            if len(upper) else upper
        self.register_buffer("upper_idx", torch.from_numpy(upper.astype(np.int64)), persistent=False)
        self.mesh = MeshCoordinates(head)

    def dynamics(self, pred: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_vel, L_acc) of the full vertex sequence: [B, T, 58] motion each, ``mask`` [B, T] or None."""
        c_pred = self.mesh(pred)
        with torch.no_grad():
            c_true = self.mesh(target)
        n = 3 * self.mesh.num_vertices                 # sum over coordinates = sum over the 3V vertex numbers
        m1, m2 = difference_masks(mask)
        vel = _masked_mean((c_pred.diff(dim=1) - c_true.diff(dim=1)).square().sum(-1) / n, m1)
        acc = _masked_mean((c_pred.diff(n=2, dim=1) - c_true.diff(n=2, dim=1)).square().sum(-1) / n, m2)
        return vel, acc

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        v_pred = self.head.skin_subset(pred, self.idx, canonical=True)
        with torch.no_grad():
            v_true = self.head.skin_subset(target, self.idx, canonical=True)
        n = self.n_lips
        m1, m2 = difference_masks(mask)
        vel, acc = self.dynamics(pred, target, mask)
        terms = {
            "param": _mse(pred, target, mask),
            "lips": _mse(v_pred[:, :, :n], v_true[:, :, :n], mask),
            "face": _mse(v_pred[:, :, n:], v_true[:, :, n:], mask),
            "vel": vel,
            "acc": acc,
            "param_vel": _mse(pred.diff(dim=1), target.diff(dim=1), m1),
            "param_acc": _mse(pred.diff(n=2, dim=1), target.diff(n=2, dim=1), m2),
        }
        total = (self.w.param * terms["param"] + self.w.vertex * (terms["lips"] + terms["face"])
                 + self.w.dynamics * (terms["vel"] + terms["acc"]))
        if self.w.param_dynamics:
            total = total + self.w.param_dynamics * (terms["param_vel"] + terms["param_acc"])
        if self.w.upper_dynamics:
            u_pred = self.head.skin_subset(pred, self.upper_idx, canonical=True)
            with torch.no_grad():
                u_true = self.head.skin_subset(target, self.upper_idx, canonical=True)
            terms["upper_vel"] = _mse(u_pred.diff(dim=1), u_true.diff(dim=1), m1)
            terms["upper_acc"] = _mse(u_pred.diff(n=2, dim=1), u_true.diff(n=2, dim=1), m2)
            total = total + self.w.upper_dynamics * (terms["upper_vel"] + terms["upper_acc"])
        terms["total"] = total
        return terms
