"""Episode seeds of simulated benchmarks: disjoint ranges for training demos, held-out demos and rollouts."""

from __future__ import annotations

SPLIT_SEEDS = {"train": 0, "val": 5_000_000, "rollout": 8_000_000}  # disjoint seed ranges per use


def episode_seed(seed: int, split: str, index: int) -> int:
    """Seed of episode `index` of a split: held-out and rollout layouts never reuse training seeds."""
    return seed * 10_000_000 + SPLIT_SEEDS[split] + index
