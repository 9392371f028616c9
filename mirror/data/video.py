"""Frame sampling for video clips, as ViCLIP does: T equal segments of an episode, one frame from each."""

from __future__ import annotations

import numpy as np


def segment_frames(length: int, count: int, rng: np.random.Generator | None = None) -> list[int]:
    """One index per equal segment of `length` frames: random within it with `rng` (training); without, the
    middle of each whole-frame segment [s, e), frame (s + e - 1) // 2, as InternVideo's evaluation samples
    ("middle"). Short episodes repeat frames rather than fail."""
    if rng is None:
        edges = np.linspace(0, length, count + 1).astype(int)
        picks = (edges[:-1] + edges[1:] - 1) // 2
    else:
        edges = np.linspace(0, length, count + 1)
        picks = np.floor(edges[:-1] + rng.random(count) * (edges[1:] - edges[:-1]))
    return np.clip(picks.astype(int), 0, length - 1).tolist()


def spanned(length: int, span: float) -> int:
    """How many of an episode's `length` frames (or pool frames) lie in its first `span` (at least one)."""
    return max(1, min(length, int(np.ceil(span * length))))
