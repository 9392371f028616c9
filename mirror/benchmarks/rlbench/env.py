"""RLBench evaluation on CoppeliaSim (the PerAct fork): one episode = reset to a stored test demo, then up
to 25 key poses from the policy.

Action mode MoveArmThenGripper(EndEffectorPoseViaPlanning, Discrete); the four cameras at 128 x 128 with
point clouds; headless. Test episode i is restored from the random state of the i-th stored test demo (its
images are not read), so every evaluation sees the same scenes. The policy's xyz is clipped to the workspace;
IK, path-planning and invalid-action errors end the episode as a failure of that kind; success is a
reward >= 1. RLBench and PyRep are imported only here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mirror.benchmarks.rlbench.format import CAMERAS, SCENE_BOUNDS
from mirror.errors import MirrorError
from mirror.rollouts.episode import EpisodeResult

MAX_STEPS = 25
Policy = Callable[[dict, str], np.ndarray]  # (observation inputs, instruction) -> 9-D action


def task_class(name: str):
    """The RLBench task class of a task module name (open_drawer -> OpenDrawer)."""
    from rlbench.backend.utils import task_file_to_task_class

    try:
        return task_file_to_task_class(name)
    except (ImportError, AttributeError):
        raise MirrorError(f"RLBench has no task '{name}' (is the PerAct fork installed?)") from None


def observation_inputs(obs, cameras: tuple[str, ...] = CAMERAS) -> dict[str, np.ndarray]:
    """The execution model's inputs from an RLBench observation: RGB, world points, proprioception."""
    return {
        "rgb": np.stack([getattr(obs, f"{c}_rgb") for c in cameras]).astype(np.uint8),
        "xyz": np.stack([getattr(obs, f"{c}_point_cloud") for c in cameras]).astype(np.float32),
        "proprio": np.array([obs.gripper_open, *obs.gripper_joint_positions], dtype=np.float32),
    }


def workspace(task) -> tuple[np.ndarray, np.ndarray]:
    """The scene's workspace box (what the planner accepts), as RVT and ARP read it; else the scene bounds."""
    scene = getattr(task, "_scene", None)
    try:
        lo = [getattr(scene, f"_workspace_min{a}") for a in "xyz"]
        hi = [getattr(scene, f"_workspace_max{a}") for a in "xyz"]
    except AttributeError:
        return np.array(SCENE_BOUNDS[:3]), np.array(SCENE_BOUNDS[3:])
    return np.array(lo) + 1e-7, np.array(hi) - 1e-7


def error_kind(err: BaseException) -> str | None:
    """The failure kind of an error raised by a simulator step ("ik", "path", "invalid_action"), else None.

    The fork's planning action mode raises a path it cannot find as InvalidActionError caused by PyRep's
    ConfigurationPathError, so the cause decides before the error itself; subclasses count as their base.
    """
    from pyrep.errors import ConfigurationPathError, IKError
    from rlbench.backend.exceptions import InvalidActionError

    kinds = ((IKError, "ik"), (ConfigurationPathError, "path"), (InvalidActionError, "invalid_action"))
    for error in (err.__cause__, err):
        for cls, kind in kinds:
            if isinstance(error, cls):
                return kind
    return None


def clip_action(action: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    action = np.asarray(action, dtype=np.float64).copy()
    action[:3] = np.clip(action[:3], lo, hi)
    return action


class RLBenchEnv:
    """One CoppeliaSim instance (one per process: threads are not supported by PyRep)."""

    def __init__(self, test_root: str, image_size: int = 128, headless: bool = True, max_steps: int = MAX_STEPS):
        from pyrep.const import RenderMode
        from rlbench.action_modes.action_mode import MoveArmThenGripper
        from rlbench.action_modes.arm_action_modes import EndEffectorPoseViaPlanning
        from rlbench.action_modes.gripper_action_modes import Discrete
        from rlbench.environment import Environment
        from rlbench.observation_config import CameraConfig, ObservationConfig

        used = CameraConfig(rgb=True, point_cloud=True, depth=False, mask=False, image_size=(image_size, image_size),
                            render_mode=RenderMode.OPENGL)
        unused = CameraConfig()
        unused.set_all(False)
        cams = {f"{c}_camera": used for c in CAMERAS}
        obs_config = ObservationConfig(overhead_camera=unused, joint_forces=False, gripper_joint_positions=True,
                                       task_low_dim_state=False, **cams)
        self.env = Environment(MoveArmThenGripper(EndEffectorPoseViaPlanning(), Discrete()), dataset_root=test_root,
                               obs_config=obs_config, headless=headless)
        self.env.launch()
        self.test_root, self.max_steps = test_root, max_steps
        self.frames: list[np.ndarray] = []  # the last episode's video, when it was asked for one
        self._tasks: dict[str, object] = {}

    def task(self, name: str):
        if name not in self._tasks:
            self._tasks[name] = self.env.get_task(task_class(name))
        return self._tasks[name]

    def run_episode(self, name: str, index: int, policy: Policy, repeat: int = 0, told: str = "instruction",
                    video: bool = False) -> EpisodeResult:
        """Test episode `index` of task `name` under `policy`; simulator errors end it as a failure. Every
        repeat restores the same stored scene (the planner's randomness varies the outcome). With `video`,
        `frames` holds the front camera at every key pose."""
        if told != "instruction":
            raise MirrorError(f"RLBench episodes hear their own instruction; told '{told}' is a Meta-World evaluation")
        task = self.task(name)
        task.set_variation(-1)
        # Only the scene's random state is needed: image_paths skips decoding the demo's images and point clouds.
        demos = task.get_demos(1, live_demos=False, image_paths=True, random_selection=False,
                               from_episode_number=index)
        if not demos:
            raise MirrorError(f"{self.test_root}: task '{name}' has no stored test episode {index}")
        demo = demos[0]
        task.set_variation(demo.variation_number)
        descriptions, obs = task.reset_to_demo(demo)
        self.frames = [obs.front_rgb] if video else []
        lo, hi = workspace(task)
        reward, steps = 0.0, 0
        for steps in range(1, self.max_steps + 1):
            action = clip_action(policy(observation_inputs(obs), descriptions[0]), lo, hi)
            try:
                obs, reward, terminate = task.step(action)
            except Exception as err:
                kind = error_kind(err)
                if kind is None:
                    raise
                return EpisodeResult(name, index, False, 0.0, steps, kind, seed=index,
                                     instruction=descriptions[0])
            if video:
                self.frames.append(obs.front_rgb)
            if reward >= 1 or terminate:
                break
        return EpisodeResult(name, index, reward >= 1, float(reward), steps, seed=index, instruction=descriptions[0])

    def close(self) -> None:
        self.env.shutdown()
