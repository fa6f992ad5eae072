"""The motion tokenizer's reconstruction loss (seed Eq. 7-10).

    L = L_param + 1e5 (L_lips + L_face) + 1e2 (L_vel + L_acc) + L_vq

L_param is the MSE of the 58 parameters; L_lips and L_face are vertex MSEs (m²) over the head's lip and
face regions in canonical zero-pose space (global rotation removed); L_vel and L_acc match first and
second temporal differences of the parameters; L_vq is the quantizer's commitment term (added by the
caller). Face vertices are a fixed, evenly spread subset so the vertex terms stay cheap on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a2llm.head import HeadModel


@dataclass(frozen=True)
class LossWeights:
    vertex: float = 1e5        # on L_lips + L_face
    smooth: float = 1e2        # on L_vel + L_acc


def _mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    err = (a - b).square().flatten(2).mean(-1)                 # [B, T]
    if mask is None:
        return err.mean()
    mask = mask[:, : err.shape[1]].to(err.dtype)
    return (err * mask).sum() / mask.sum().clamp_min(1)


class MotionLoss(nn.Module):
    """Eq. 7-10 for batches [B, T, 58]; ``mask`` [B, T] marks real frames."""

    def __init__(self, head: HeadModel, weights: LossWeights = LossWeights(), face_vertices: int = 600):
        super().__init__()
        self.head, self.w = head, weights
        lips = np.asarray(head.regions["lips"])
        face = np.setdiff1d(head.regions["face"], lips)
        face = face[np.linspace(0, len(face) - 1, min(face_vertices, len(face))).round().astype(int)]
        self.n_lips = len(lips)
        self.register_buffer("idx", torch.from_numpy(np.concatenate([lips, face])), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
        v_pred = self.head.skin_subset(pred, self.idx, canonical=True)
        with torch.no_grad():
            v_true = self.head.skin_subset(target, self.idx, canonical=True)
        n = self.n_lips
        terms = {
            "param": _mse(pred, target, mask),
            "lips": _mse(v_pred[:, :, :n], v_true[:, :, :n], mask),
            "face": _mse(v_pred[:, :, n:], v_true[:, :, n:], mask),
            "vel": _mse(pred.diff(dim=1), target.diff(dim=1), None if mask is None else mask[:, 1:] * mask[:, :-1]),
            "acc": _mse(pred.diff(n=2, dim=1), target.diff(n=2, dim=1),
                        None if mask is None else mask[:, 2:] * mask[:, 1:-1] * mask[:, :-2]),
        }
        terms["total"] = (terms["param"] + self.w.vertex * (terms["lips"] + terms["face"])
                          + self.w.smooth * (terms["vel"] + terms["acc"]))
        return terms
