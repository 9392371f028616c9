"""Why a Meta-World rollout failed, read from its key poses against the scripted expert's for the same scene.

The expert's key poses are the demonstrations' (`keyframes.py` on the expert's episode from the scene's seed):
the targets the policy was trained towards. They are matched in order: expert key pose j counts as reached by the
first policy key pose after the one that reached an earlier expert key pose whose target lies within `OFF` and
whose gripper agrees; a waypoint the policy skips costs nothing once a later key pose is reached, but a grasp or
release (the expert's gripper changes) cannot be skipped. The first thing that went wrong names the cause: the
whole motion is the twin task's; the hand stopped short of a reached key pose (blocked by a contact); at the
expert key pose after the last one reached, no later policy key pose came within `OFF` (its nearest target
clipped by the reachable box, the policy staying in one place: a stall, or simply elsewhere: off), one came within
`OFF` with the other gripper (gripper), or none were left (out of key poses or env steps). With every expert key
pose reached, it followed the expert within `OFF` and still failed (precise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF = 0.02  # metres from the expert's key pose within which a policy key pose reaches it
CLIPPED = 0.01  # metres the reachable box moved a target
BLOCKED = 0.01  # metres the hand stopped short of its target
STUCK = 0.01  # metres around their mean within which all the policy's later key poses lie in a stall
CAUSES = ("twin", "off", "clipped", "stall", "gripper", "keyposes", "horizon", "blocked", "precise")


@dataclass
class KeyPose:
    """One key pose of a rollout: what the policy asked, the target after the reach box, the gripper, and
    where the hand came to rest."""

    asked: np.ndarray
    target: np.ndarray
    open: bool
    reached: np.ndarray


@dataclass
class Plan:
    """The expert's key poses for a scene: positions (K, 3) and whether the gripper is open at each."""

    position: np.ndarray
    open: np.ndarray

    def __len__(self) -> int:
        return len(self.position)


@dataclass
class Failure:
    cause: str  # one of CAUSES
    keypose: int  # 1-based expert key pose where it happened, 0 for the whole episode
    distance: float  # metres: nearest approach, clipped by, stopped short by (0 where none applies)
    detail: str


def expert_plan(scene, seed: int) -> Plan:
    """The scripted expert's key poses from the scene of `seed` (the scene is left reset to another state)."""
    from mirror.benchmarks.metaworld.control import expert
    from mirror.benchmarks.metaworld.keyframes import keyframes

    trajectory = expert(scene, seed)
    keys, closed = keyframes(trajectory.hand, trajectory.grip)
    return Plan(trajectory.hand[keys], ~np.asarray(closed, dtype=bool))


def _cm(metres: float) -> str:
    return f"{100 * metres:.1f} cm"


def reached(poses: list[KeyPose], plan: Plan) -> list[int | None]:
    """For each expert key pose, the index of the policy key pose that reached it in order (None: not reached).
    Matching stops at a missed key pose where the expert's gripper changes: a grasp or release cannot be skipped."""
    out: list[int | None] = []
    start, was_open = 0, True
    for j in range(len(plan)):
        hit = next((i for i in range(start, len(poses)) if np.linalg.norm(poses[i].target - plan.position[j]) <= OFF
                    and poses[i].open == bool(plan.open[j])), None)
        out.append(hit)
        if hit is not None:
            start = hit + 1
        elif bool(plan.open[j]) != was_open:
            return out + [None] * (len(plan) - j - 1)
        was_open = bool(plan.open[j])
    return out


def _follows(poses: list[KeyPose], plan: Plan) -> float:
    """Mean distance of the policy's key poses from the plan's, over the key poses both have."""
    n = min(len(poses), len(plan))
    return float(np.mean([np.linalg.norm(poses[k].target - plan.position[k]) for k in range(n)])) if n else np.inf


def diagnose(poses: list[KeyPose], plan: Plan, twin: Plan | None = None, max_keyposes: int = 0) -> Failure:
    """The cause of a failed episode with key poses `poses`, against the expert's `plan` for its scene (and
    the twin task's expert from the same seed, `twin`); `max_keyposes` is the rollout's limit."""
    n = len(plan)
    if twin is not None and len(poses) > 1:
        own, other = _follows(poses, plan), _follows(poses, twin)
        if other < OFF and other < own / 2:
            return Failure("twin", 0, own, f"followed the twin task's expert ({_cm(other)} on average), "
                                           f"not the instructed one's ({_cm(own)})")
    hits = reached(poses, plan)
    last = max((j for j, h in enumerate(hits) if h is not None), default=-1)
    for j, i in enumerate(hits[: last + 1]):
        short = float(np.linalg.norm(poses[i].reached - poses[i].target)) if i is not None else 0.0
        if short > BLOCKED:
            return Failure("blocked", j + 1, short, f"key pose {j + 1} of {n}: the hand stopped {_cm(short)} "
                                                    "short of it")
    if last == n - 1:
        return Failure("precise", 0, _follows(poses, plan), f"reached the expert's {n} key poses within {_cm(OFF)} "
                                                            "and did not succeed")
    j = last + 1
    at = f"key pose {j + 1} of {n}"
    after = poses[hits[last] + 1 :] if last >= 0 else poses
    if not after:
        if max_keyposes and len(poses) >= max_keyposes:
            return Failure("keyposes", j + 1, 0.0, f"{at} not reached: out of key poses ({len(poses)})")
        return Failure("horizon", j + 1, 0.0, f"{at} not reached: out of env steps after {len(poses)} key poses")
    gaps = [float(np.linalg.norm(p.target - plan.position[j])) for p in after]
    nearest = after[int(np.argmin(gaps))]
    gap = min(gaps)
    where = np.round(100 * (nearest.target - plan.position[j]), 1).tolist()
    if gap <= OFF:
        state = "open" if nearest.open else "closed"
        return Failure("gripper", j + 1, gap, f"{at}: reached with the gripper {state}, the expert's is not")
    clip = float(np.linalg.norm(nearest.asked - nearest.target))
    if clip > CLIPPED:
        return Failure("clipped", j + 1, gap, f"{at}: the nearest target, {_cm(gap)} away, was moved {_cm(clip)} "
                                              "by the reachable box")
    targets = np.stack([p.target for p in after])
    if len(after) > 1 and np.linalg.norm(targets - targets.mean(0), axis=1).max() < STUCK:
        return Failure("stall", j + 1, gap, f"{at} not reached: the policy stays in one place, {_cm(gap)} away "
                                            f"(xyz {where} cm)")
    return Failure("off", j + 1, gap, f"{at} not reached: the nearest of the policy's next {len(after)} key poses "
                                      f"came within {_cm(gap)} (xyz {where} cm)")
