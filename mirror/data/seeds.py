"""Episode seeds of simulated benchmarks: disjoint ranges for training demos, held-out demos, the validation
rollouts during training and the test scenes of `mirror eval` (never seen while training or tuning)."""

from __future__ import annotations

SPLIT_SEEDS = {"train": 0, "val": 5_000_000, "rollout": 8_000_000, "test": 9_000_000}  # each range 1e6 or more


def episode_seed(seed: int, split: str, index: int) -> int:
    """Seed of episode `index` (below 1e6) of a split: the splits never share a seed."""
    return seed * 10_000_000 + SPLIT_SEEDS[split] + index
