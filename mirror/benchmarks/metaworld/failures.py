"""Why a Meta-World rollout failed, read from its key poses against the scripted expert's for the same scene.

The expert's key poses are the demonstrations' (`keyframes.py` on the expert's episode from the scene's seed),
so key pose k of the policy is compared with the k-th target it was trained towards. The first event of the
episode names the cause: the whole motion is the twin task's; key pose k's target was clipped by the reachable
box; it is more than `OFF` from the expert's while it repeats the previous key pose (a stall) or not (off); its
gripper differs from the expert's; the hand stopped short of it (blocked by contact). With none of these the
policy followed the expert within `OFF` and still failed (`precise`), or ran out of key poses or env steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF = 0.02  # metres from the expert's key pose that count as a wrong key pose
CLIPPED = 0.01  # metres the reachable box moved a target
BLOCKED = 0.01  # metres the hand stopped short of its target
REPEAT = 0.005  # metres between two key poses with the same gripper that count as one repeated
CAUSES = ("twin", "clipped", "stall", "off", "gripper", "blocked", "precise", "keyposes", "horizon")


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
    keypose: int  # 1-based key pose where it happened, 0 for the whole episode
    distance: float  # metres: off by, clipped by, stopped short by (0 where none applies)
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
    for k, pose in enumerate(poses):
        at = f"key pose {k + 1} of {n}"
        clip = float(np.linalg.norm(pose.asked - pose.target))
        if clip > CLIPPED:
            return Failure("clipped", k + 1, clip, f"{at}: the reachable box moved its target {_cm(clip)}")
        if k < n:
            off = float(np.linalg.norm(pose.target - plan.position[k]))
            if off > OFF and k and np.linalg.norm(pose.target - poses[k - 1].target) < REPEAT:
                return Failure("stall", k + 1, off, f"{at}: repeats key pose {k}, {_cm(off)} from the expert's")
            if off > OFF:
                where = np.round(100 * (pose.target - plan.position[k]), 1).tolist()
                return Failure("off", k + 1, off, f"{at}: {_cm(off)} from the expert's (xyz {where} cm)")
            if pose.open != bool(plan.open[k]):
                state = "open" if pose.open else "closed"
                return Failure("gripper", k + 1, 0.0, f"{at}: gripper {state}, the expert's is not")
        short = float(np.linalg.norm(pose.reached - pose.target))
        if short > BLOCKED:
            return Failure("blocked", k + 1, short, f"{at}: the hand stopped {_cm(short)} short of it")
    if len(poses) >= n:
        return Failure("precise", 0, _follows(poses, plan), f"followed the expert's {n} key poses within "
                                                              f"{_cm(OFF)} ({_cm(_follows(poses, plan))} on "
                                                              "average) and did not succeed")
    if max_keyposes and len(poses) >= max_keyposes:
        return Failure("keyposes", 0, 0.0, f"ran out of key poses ({len(poses)} of the expert's {n})")
    return Failure("horizon", 0, 0.0, f"ran out of env steps after {len(poses)} of the expert's {n} key poses")
