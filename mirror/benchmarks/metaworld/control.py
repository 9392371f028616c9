"""The keyframe controller that executes a 9-D key-pose action in a Meta-World scene, and the scripted expert.

The controller: the mocap target (which the hand follows through a weld) moves in a straight line at the
arm's top speed (1 cm per env step) to the action's xyz, the hand settles, then the gripper acts (open or
close) while the hand holds. The Sawyer's orientation is fixed in Meta-World, so the action's rotation is
ignored. Success is the environment's own `success` flag, at any step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirror.benchmarks.metaworld.scene import ENV_POLICY_MAP, Scene

MOVE_STEPS = 100  # env steps one move may take
GAIN = 10.0  # proportional gain on the hand's position error (an action of 1 moves the mocap 1 cm)
SETTLED = 0.003  # metres between hand and target that count as arrived
STALL_STEPS, STALLED = 10, 0.001  # a hand that moved less than 1 mm in 10 steps is blocked: the move ends
GRIP_STEPS = 10  # env steps the gripper acts while the hand holds
CLOSED, OPEN = 1.0, -1.0  # gripper efforts
AFTER_SUCCESS = 25  # expert steps recorded after its first success


def move_to(scene: Scene, target: np.ndarray, gripper_open: bool, watch: Callable[[], None] | None = None
            ) -> np.ndarray:
    """Keyframe controller: the hand moves to `target` (clipped to the TCP's reach) under proportional
    control along the straight line, at most `MOVE_STEPS` env steps, until it is within `SETTLED` or stalls;
    then the gripper acts for `GRIP_STEPS` while the hand holds. Stops early on success or at the horizon.
    `watch` is called after every env step (to record a video). Returns the target after clipping."""
    low, high = scene.reach()
    target = np.clip(np.asarray(target[:3], dtype=np.float64), low, high)

    def hold(effort: float) -> None:
        delta = GAIN * (target - scene.hand())
        scene.step([*(delta / max(1.0, np.abs(delta).max())), effort])
        if watch is not None:
            watch()

    effort = OPEN if scene.gripper_open else CLOSED
    trail = [scene.hand()]
    for _ in range(MOVE_STEPS):
        if np.linalg.norm(scene.hand() - target) < SETTLED or scene.success or scene.budget <= 0:
            break
        if len(trail) > STALL_STEPS and np.linalg.norm(trail[-1] - trail[-1 - STALL_STEPS]) < STALLED:
            break
        hold(effort)
        trail.append(scene.hand())
    if gripper_open != scene.gripper_open:
        scene.gripper_open = gripper_open
        effort = OPEN if gripper_open else CLOSED
        for _ in range(GRIP_STEPS):
            if scene.success or scene.budget <= 0:
                break
            hold(effort)
    return target


@dataclass
class Trajectory:
    """The scripted expert's episode: T actions, T + 1 frames (hand pose, fingers and physics state per frame)."""

    pose: np.ndarray  # (T + 1, 7) hand xyz + quaternion xyzw
    fingers: np.ndarray  # (T + 1, 2) finger joint positions
    grip: np.ndarray  # (T,) gripper effort of each action
    physics: list[np.ndarray]  # T + 1 states
    success: bool

    @property
    def hand(self) -> np.ndarray:
        return self.pose[:, :3]


def expert(scene: Scene, seed: int) -> Trajectory:
    """Run Meta-World's scripted policy for the task from the seed's initial state until `AFTER_SUCCESS` steps
    after its first success (the first success often comes with the hand still on its way, at the edge of
    the success region; the episode's last frame is then well inside it)."""
    policy = ENV_POLICY_MAP[scene.task]()
    obs = scene.reset(seed)
    pose, fingers, grip, physics = [scene.pose()], [scene.fingers()], [], [scene.physics()]
    after = 0
    while after < AFTER_SUCCESS and scene.budget > 0:
        after += scene.success
        with warnings.catch_warnings():  # the experts' gains exceed the action range by design
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            action = policy.get_action(obs)
        obs = scene.step(action)
        pose.append(scene.pose())
        fingers.append(scene.fingers())
        grip.append(float(action[3]))
        physics.append(scene.physics())
    return Trajectory(np.asarray(pose), np.stack(fingers), np.asarray(grip), physics, scene.success)


def replay(scene: Scene, seed: int, targets: list[tuple[np.ndarray, bool]]) -> bool:
    """Whether the keyframe controller, given only the (position, gripper open) key poses, solves the task
    from the seed's initial state."""
    scene.reset(seed)
    for position, gripper_open in targets:
        if scene.success or scene.budget <= 0:
            break
        move_to(scene, position, gripper_open)
    return scene.success
