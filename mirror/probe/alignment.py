"""Alignment probing (paper Sec. 2): with U and E frozen, train only T_u and T_e with Eq. 2 on paired features,
then measure bidirectional Recall@1 / @5 of nearest-neighbour retrieval on held-out pairs, beside chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from mirror.align import MirrorAlignment, recall_at_k, recall_chance


@dataclass
class ProbeResult:
    recall1: float
    recall5: float
    chance1: float
    chance5: float
    train_loss: float
    n_train: int
    n_test: int
    ci1: tuple[float, float] | None = None  # bootstrap 95% interval of Recall@1

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Pairs:
    """Paired feature rows and the keys that decide which rows are positives of each other."""

    u: torch.Tensor
    e: torch.Tensor
    keys: torch.Tensor

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray | torch.Tensor) -> Pairs:
        index = torch.as_tensor(index, dtype=torch.long)
        return Pairs(self.u[index], self.e[index], self.keys[index])

    def split(self, test_share: float, seed: int) -> tuple[Pairs, Pairs]:
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        cut = int(round(len(self) * (1 - test_share)))
        return self.subset(order[:cut]), self.subset(order[cut:])


def train_probe(train: Pairs, dim: int = 1024, tau: float = 0.1, epochs: int = 30, lr: float = 1e-3,
                batch: int = 256, seed: int = 0) -> tuple[MirrorAlignment, float]:
    """Fit the two linear maps on frozen features; returns them and the last epoch's mean loss."""
    torch.manual_seed(seed)
    align = MirrorAlignment(train.u.shape[1], train.e.shape[1], dim, tau)
    optimizer = torch.optim.Adam(align.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    last = float("nan")
    for _ in range(epochs):
        losses = []
        for idx in torch.randperm(len(train), generator=generator).split(batch):
            if len(idx) < 2:
                continue
            loss = align(train.u[idx], train.e[idx], train.keys[idx], distributed=False).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        last = float(np.mean(losses))
    return align.eval(), last


def bootstrap_recall(z_u: torch.Tensor, z_e: torch.Tensor, keys: torch.Tensor, reps: int = 1000,
                     seed: int = 0) -> tuple[float, float]:
    """95% interval of Recall@1 over test sets resampled with replacement."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(reps):
        idx = torch.as_tensor(rng.integers(0, len(keys), len(keys)))
        scores.append(recall_at_k(z_u[idx], z_e[idx], keys[idx], 1))
    return float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5))


def evaluate_probe(align: MirrorAlignment, test: Pairs, train_loss: float, n_train: int,
                   bootstrap: int = 0, seed: int = 0) -> ProbeResult:
    with torch.no_grad():
        z_u, z_e = align.project(test.u, test.e)
    ci = bootstrap_recall(z_u, z_e, test.keys, bootstrap, seed) if bootstrap else None
    return ProbeResult(
        recall1=recall_at_k(z_u, z_e, test.keys, 1), recall5=recall_at_k(z_u, z_e, test.keys, 5),
        chance1=recall_chance(test.keys, 1), chance5=recall_chance(test.keys, 5), train_loss=train_loss,
        n_train=n_train, n_test=len(test), ci1=ci,
    )


def probe(train: Pairs, test: Pairs, dim: int = 1024, tau: float = 0.1, epochs: int = 30, bootstrap: int = 0,
          seed: int = 0) -> ProbeResult:
    """Train T_u, T_e on `train`, score held-out `test`."""
    align, loss = train_probe(train, dim, tau, epochs, seed=seed)
    return evaluate_probe(align, test, loss, len(train), bootstrap, seed)


def success_failure(pairs: Pairs, success: np.ndarray, test_share: float = 0.3, seed: int = 0, **kw) -> dict:
    """Probe success and failure subsets separately at equal sample sizes (the larger one subsampled)."""
    success = np.asarray(success, dtype=bool)
    if len(success) != len(pairs):
        raise ValueError(f"{len(success)} success labels for {len(pairs)} pairs")
    rng = np.random.default_rng(seed)
    wins, losses = np.flatnonzero(success), np.flatnonzero(~success)
    size = min(len(wins), len(losses))
    if size < 10:
        raise ValueError(f"too few samples to compare: {len(wins)} successes, {len(losses)} failures")
    out = {}
    for name, rows in (("success", wins), ("failure", losses)):
        chosen = pairs.subset(rng.choice(rows, size, replace=False))
        train, test = chosen.split(test_share, seed)
        out[name] = probe(train, test, bootstrap=1000, seed=seed, **kw).as_dict()
    out["samples_per_subset"] = size
    return out
