"""Comparing two embedding spaces of the same items: mutual k-NN precision and Procrustes disparity.

precision@k (Milano & Nolfi): for each item, the share of its k nearest neighbours (cosine, self excluded)
that are also among its k nearest neighbours in the other space, averaged; chance is k / (n - 1).
Procrustes: both spaces reduced by PCA to the same width, then `scipy.spatial.procrustes` (centred,
scaled, best rotation); its disparity is read against a permutation null, since chance depends on width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import procrustes


def neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k most cosine-similar other rows, (n, k)."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def precision_at_k(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mean overlap of the k-NN sets of each item in spaces a and b, divided by k."""
    if len(a) != len(b):
        raise ValueError(f"the spaces have {len(a)} and {len(b)} items")
    na, nb = neighbours(a, k), neighbours(b, k)
    return float(np.mean([len(set(na[i]) & set(nb[i])) / k for i in range(len(a))]))


def pca(x: np.ndarray, width: int) -> np.ndarray:
    """Projection of the centred rows on their first `width` principal axes."""
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:width].T


@dataclass
class ProcrustesResult:
    disparity: float
    null_mean: float
    null_std: float
    p_value: float  # share of permutations at least as good (as low) as the real pairing
    width: int


def procrustes_test(a: np.ndarray, b: np.ndarray, width: int, permutations: int = 1000, seed: int = 0):
    """Disparity at a fixed PCA width, against the disparities of randomly re-paired items."""
    width = min(width, a.shape[1], b.shape[1], len(a) - 1)
    pa, pb = pca(a, width), pca(b, width)
    disparity = procrustes(pa, pb)[2]
    rng = np.random.default_rng(seed)
    null = np.array([procrustes(pa, pb[rng.permutation(len(pb))])[2] for _ in range(permutations)])
    p = (1 + np.sum(null <= disparity)) / (1 + permutations)
    return ProcrustesResult(float(disparity), float(null.mean()), float(null.std()), float(p), width)
