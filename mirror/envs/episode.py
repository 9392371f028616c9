"""What one rollout episode came to: kept apart from the training callback so that rollout worker processes,
`mirror report` and the tables import it without Lightning."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EpisodeResult:
    task: str
    index: int
    success: bool
    reward: float
    length: int
    error: str | None = None  # crash, timeout, exception, or the simulator's failure kind
