"""What one rollout episode came to: kept apart from the training callback so that rollout worker processes,
`mirror report` and the tables import it without Lightning."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass
class EpisodeResult:
    task: str
    index: int
    success: bool
    reward: float
    length: int
    error: str | None = None  # crash, timeout, exception, setup, or the simulator's failure kind
    detail: str = ""  # why: an error's, or a failure's in words where the benchmark reads one (`cause`)
    seed: int = -1  # the scene the episode played (its environment seed, or the stored test demo), -1 unknown
    instruction: str = ""  # what the policy was told
    cause: str = ""  # why a failure failed, where the benchmark reads it from the rollout (Meta-World)

    @classmethod
    def lost(cls, task: str, index: int, kind: str, detail: str) -> EpisodeResult:
        """An episode that did not run to its end (its worker crashed, hung or could not start)."""
        return cls(task, index, False, 0.0, 0, kind, detail)

    @property
    def is_lost(self) -> bool:
        """Whether the episode did not run to its end (it has no scene): left out of success rates."""
        return self.seed < 0


def error_counts(results: list[EpisodeResult]) -> dict[str, int]:
    """Episodes lost per error kind, e.g. {'crash': 1, 'timeout': 2}."""
    return dict(sorted(Counter(r.error for r in results if r.error).items()))
