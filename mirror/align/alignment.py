"""MirrorAlignment: the two linear maps T_u, T_e into the shared space Z and their contrastive loss."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from mirror.align.loss import bidirectional_infonce


class AlignOutput(NamedTuple):
    loss: Tensor
    hit_ue: Tensor  # in-batch top-1 hit rate, u -> e
    hit_eu: Tensor
    z_u: Tensor  # unit vectors in Z
    z_e: Tensor


class MirrorAlignment(nn.Module):
    """Projects understanding features u and execution features e into Z and aligns paired rows (Eq. 2)."""

    def __init__(self, dim_u: int, dim_e: int, dim: int = 1024, tau: float = 0.1):
        super().__init__()
        self.t_u = nn.Linear(dim_u, dim)
        self.t_e = nn.Linear(dim_e, dim)
        self.tau = tau

    def project(self, u: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """Unit vectors in Z, so that dot products are the cosine similarities of the paper."""
        return F.normalize(self.t_u(u.float()), dim=-1), F.normalize(self.t_e(e.float()), dim=-1)

    def forward(self, u: Tensor, e: Tensor, keys: Tensor, distributed: bool = True) -> AlignOutput:
        z_u, z_e = self.project(u, e)
        loss, hit_ue, hit_eu = bidirectional_infonce(z_u, z_e, keys, self.tau, distributed)
        return AlignOutput(loss, hit_ue, hit_eu, z_u, z_e)
