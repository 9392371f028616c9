"""Keyframe discovery, the PerAct heuristic: where the gripper opens or closes, where the arm stops, the end."""

from __future__ import annotations

import numpy as np

from mirror.benchmarks.rlbench.pickles import Demo


def keyframes(demo: Demo, stopping_delta: float = 0.1) -> list[int]:
    """Indices i > 0 where the gripper state changes, the last frame, or the arm stopped.

    Stopped: all joint velocities within `stopping_delta` of 0, not the second-to-last frame, the gripper
    state unchanged over i-2 .. i+1, and at least 4 frames since the previous stop. As in the reference
    implementation the stop test runs at every i < T-2 (i = 0 included) and reads frames i-1 and i-2 with
    Python's negative indexing, so near the start they wrap to the last frames; that reproduces the
    standard keyframes. If the last two keyframes are adjacent, the earlier one is dropped.
    """
    n = len(demo)
    opened = [demo[i].gripper_open for i in range(n)]
    found: list[int] = []
    cooldown = 0
    for i in range(n):
        steady = i < n - 2 and opened[i] == opened[i + 1] == opened[i - 1] and opened[i - 2] == opened[i - 1]
        still = bool(np.allclose(demo[i].joint_velocities, 0, atol=stopping_delta))
        stopped = cooldown <= 0 and still and i != n - 2 and steady
        cooldown = 4 if stopped else cooldown - 1
        if i != 0 and (opened[i] != opened[i - 1] or i == n - 1 or stopped):
            found.append(i)
    if len(found) > 1 and found[-1] - 1 == found[-2]:
        found.pop(-2)
    return found
