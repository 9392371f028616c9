"""Retrieval scores of aligned representations: bidirectional Recall@k with its chance level."""

from __future__ import annotations

import torch
from torch import Tensor


def retrieval_hits(query: Tensor, gallery: Tensor, q_keys: Tensor, g_keys: Tensor, k: int = 1) -> Tensor:
    """Per query: whether any of its k most similar gallery rows shares its key (dot-product similarity)."""
    top = (query @ gallery.T).topk(min(k, len(gallery)), dim=1).indices
    return (g_keys[top] == q_keys[:, None]).any(dim=1)


def recall_at_k(z_u: Tensor, z_e: Tensor, keys: Tensor, k: int = 1) -> float:
    """Mean of u->e and e->u Recall@k over paired rows; a hit is any retrieved row with the same key."""
    ue = retrieval_hits(z_u, z_e, keys, keys, k).float().mean()
    eu = retrieval_hits(z_e, z_u, keys, keys, k).float().mean()
    return float((ue + eu) / 2)


def recall_chance(keys: Tensor, k: int = 1) -> float:
    """Expected Recall@k of a random ranking: 1 - P(none of k draws without replacement is a positive)."""
    n = len(keys)
    positives = (keys[:, None] == keys[None, :]).sum(dim=1).double()
    miss = torch.ones_like(positives)
    for i in range(min(k, n)):
        miss = miss * (n - positives - i).clamp(min=0) / (n - i)
    return float((1 - miss).mean())
