"""The bidirectional InfoNCE of the paper's Eq. 2, with multi-positive targets, exact across DDP ranks.

Each rank scores its own rows against the columns of every rank (features gathered with gradients), as
open_clip's local loss does; the mean over ranks then equals the loss of one process on the whole batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import Tensor


class InfoNCE(NamedTuple):
    loss: Tensor  # mean of the u->e and e->u cross-entropies over the local rows
    hit_ue: Tensor  # share of local u rows whose most similar e column is a positive
    hit_eu: Tensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather(x: Tensor, with_grad: bool) -> Tensor:
    """`x` of every rank concatenated in rank order; with `with_grad`, gradients reach each rank's slice.

    Every rank must call this with the same shape (training loaders drop their last incomplete batch).
    """
    if world_size() == 1:
        return x
    if with_grad:
        return torch.cat(dist_fn.all_gather(x), dim=0)
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def positive_targets(row_keys: Tensor, col_keys: Tensor) -> Tensor:
    """Target distribution per row: its probability mass shared equally by the columns with its key."""
    same = (row_keys[:, None] == col_keys[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def bidirectional_infonce(
    z_u: Tensor, z_e: Tensor, keys: Tensor, tau: float, distributed: bool = True
) -> InfoNCE:
    """Eq. 2 on L2-normalised pairs (z_u[i], z_e[i]); rows with equal `keys` are positives of each other.

    With a single positive per row this is exactly the paper's loss; duplicates of a key (two samples of
    one instruction in a batch) share the target mass instead of being pushed apart as negatives. The logits
    are float32 whatever the autocast precision (bf16 would space cosines / 0.05 by 0.125).
    """
    z_u, z_e = z_u.float(), z_e.float()
    all_u, all_e = (gather(z_u, True), gather(z_e, True)) if distributed else (z_u, z_e)
    all_keys = gather(keys, False) if distributed else keys
    targets = positive_targets(keys, all_keys)
    with torch.autocast(z_u.device.type, enabled=False):
        logits_ue = z_u @ all_e.T / tau
        logits_eu = z_e @ all_u.T / tau
    loss = (F.cross_entropy(logits_ue, targets) + F.cross_entropy(logits_eu, targets)) / 2
    with torch.no_grad():
        hit_ue = (targets.gather(1, logits_ue.argmax(1, keepdim=True)) > 0).float().mean()
        hit_eu = (targets.gather(1, logits_eu.argmax(1, keepdim=True)) > 0).float().mean()
    return InfoNCE(loss, hit_ue, hit_eu)
