"""Keyframes of a Meta-World expert episode, from its hand path and gripper commands.

The scripted experts steer the hand towards one waypoint after another and rarely stand still, so a keyframe
is (1) a stop of the expert: a local minimum of the hand's speed below `STOP_SPEED`; (2) a gripper change: the
gripper command (effort > 0 closes) changes, placed at the first stop at or after the change, where the
expert's hand comes to rest on what it grasps (or at the change itself when no stop follows); (3) a corner of
the path: between the keyframes above, the path is split where it strays more than `CORNER` from the
straight line (Ramer-Douglas-Peucker), so that straight moves between keyframes retrace it; (4) the last frame.
"""

from __future__ import annotations

import numpy as np

STOP_SPEED = 0.0035  # metres per env step (the arm's top speed is 0.01 per axis)
CORNER = 0.02  # metres


def gripper_closed(grip: np.ndarray) -> np.ndarray:
    return np.asarray(grip) > 0


def stops(hand: np.ndarray) -> list[int]:
    """Frames where the hand's speed is a local minimum below `STOP_SPEED` (frame t moves from t - 1)."""
    speed = np.r_[0.0, np.linalg.norm(np.diff(hand, axis=0), axis=1), np.inf]  # at rest before frame 0
    return [t for t in range(1, len(hand) - 1)
            if speed[t] < STOP_SPEED and speed[t] < speed[t - 1] and speed[t] <= speed[t + 1]]


def corners(hand: np.ndarray, lo: int, hi: int, tolerance: float = CORNER) -> list[int]:
    """Frames strictly between lo and hi that split the path into nearly straight pieces (Ramer-Douglas-Peucker)."""
    if hi - lo < 2:
        return []
    a, b = hand[lo], hand[hi]
    points = hand[lo + 1 : hi]
    chord = b - a
    length = np.linalg.norm(chord)
    if length < 1e-9:
        distance = np.linalg.norm(points - a, axis=1)
    else:
        distance = np.linalg.norm(np.cross(points - a, chord / length), axis=1)
    far = int(distance.argmax())
    if distance[far] <= tolerance:
        return []
    mid = lo + 1 + far
    return [*corners(hand, lo, mid, tolerance), mid, *corners(hand, mid, hi, tolerance)]


def keyframes(hand: np.ndarray, grip: np.ndarray) -> tuple[list[int], list[bool]]:
    """Keyframe frame indices (> 0, increasing, the last frame included) of an episode with T + 1 hand
    positions `hand` and T gripper efforts `grip` (action t leads from frame t to t + 1), and whether the
    gripper is closed at each (a delayed gripper change keeps the old state until its keyframe)."""
    last = len(hand) - 1
    still = stops(hand)
    closed = gripper_closed(grip)
    state = closed.copy()
    anchors = set(still) | {last}
    for t in np.flatnonzero(closed[1:] != closed[:-1]) + 1:
        at = next((s for s in still if s >= t), int(t))
        state[t:at] = closed[t - 1]
        anchors.add(at)
    out, previous = [], 0
    for k in sorted(anchors):
        out += [*corners(hand, previous, k), k]
        previous = k
    return out, [bool(state[min(k, last - 1)]) for k in out]
