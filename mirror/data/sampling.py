"""Batch samplers for step-based training: endless, seeded, sharded across ranks, resumable at any step.

Training loaders yield `Draw(index, seed)` items: `seed` is unique to the draw and reproducible, so a
dataset's random choices (a partner clip, frame offsets) come out the same after a resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import Sampler


class Draw(NamedTuple):
    index: int
    seed: tuple[int, int, int]  # (base seed, epoch, position): feed to numpy.random.default_rng


class StepBatchSampler(Sampler[list[Draw]]):
    """Endless batches over `size` items; global batch g, rank r gets a disjoint slice of permutation e.

    Every global batch has `batch_size * world` items (distinct unless `weights` are given); an epoch's
    incomplete tail is dropped so
    every rank always gets full batches (the gathered contrastive loss needs equal shapes). `start` is
    the number of global batches already consumed, so a resumed run continues at the exact position.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0,
                 weights: torch.Tensor | None = None):
        if size < batch_size * world:
            raise ValueError(
                f"dataset of {size} items is smaller than one global batch ({batch_size} x {world} ranks)"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world, self.start = rank, world, start
        self.weights = weights
        self.per_epoch = size // (batch_size * world)

    def _order(self, epoch: int) -> torch.Tensor:
        """A permutation, or with `weights` (e.g. uniform over tasks) `size` draws with replacement."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.size, replacement=True, generator=gen)
        return torch.randperm(self.size, generator=gen)

    def __iter__(self) -> Iterator[list[Draw]]:
        step, epoch, order = self.start, -1, None
        while True:
            e, pos = divmod(step, self.per_epoch)
            if e != epoch:
                epoch, order = e, self._order(e)
            lo = (pos * self.world + self.rank) * self.batch_size
            yield [Draw(int(order[i]), (self.seed, epoch, i)) for i in range(lo, lo + self.batch_size)]
            step += 1


def shard(size: int, rank: int, world: int) -> list[int]:
    """Evaluation indices of one rank: strided and padded to equal length (as DistributedSampler does)."""
    per_rank = -(-size // world)
    return [i % size for i in range(rank, per_rank * world, world)]
