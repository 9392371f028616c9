"""Frame sampling for video clips, as ViCLIP does: T equal segments of an episode, one frame from each."""

from __future__ import annotations

import numpy as np


def segment_frames(length: int, count: int, rng: np.random.Generator | None = None) -> list[int]:
    """One index per equal segment of `length` frames: random within it with `rng` (training),
    its middle without (evaluation). Short episodes repeat frames rather than fail."""
    edges = np.linspace(0, length, count + 1)
    if rng is None:
        picks = (edges[:-1] + edges[1:]) / 2
    else:
        picks = edges[:-1] + rng.random(count) * (edges[1:] - edges[:-1])
    return np.clip(np.floor(picks).astype(int), 0, length - 1).tolist()
