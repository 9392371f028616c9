"""Fake Environment and TaskEnvironment: scripted tasks whose success is reaching a goal point."""

import os
import pickle
import types
from pathlib import Path

import numpy as np
from pyrep.errors import ConfigurationPathError, IKError

from rlbench.backend.exceptions import InvalidActionError, TaskEnvironmentError
from rlbench.demo import Demo

WORKSPACE = np.array([[-0.3, -0.5, 0.75], [0.7, 0.5, 1.75]])
CAMERAS = ("left_shoulder", "right_shoulder", "overhead", "wrist", "front")


class Observation:
    def __init__(self, config, rng, gripper):
        for cam in CAMERAS:
            cfg = getattr(config, f"{cam}_camera")
            size = cfg.image_size
            on = cfg.rgb or cfg.point_cloud or cfg.depth
            setattr(self, f"{cam}_rgb", rng.integers(0, 256, (*size, 3), dtype=np.uint8) if cfg.rgb else None)
            cloud = rng.uniform(WORKSPACE[0], WORKSPACE[1], (*size, 3)) if cfg.point_cloud else None
            setattr(self, f"{cam}_point_cloud", cloud)
            setattr(self, f"{cam}_depth", rng.uniform(0, 1, size).astype(np.float32) if cfg.depth and on else None)
        self.gripper_open = float(gripper[7] > 0.5)
        self.gripper_pose = gripper[:7].copy()
        self.gripper_joint_positions = np.full(2, 0.04 * self.gripper_open)
        self.joint_velocities = np.zeros(7)
        self.misc = {}


class TaskEnvironment:
    def __init__(self, env, task_class):
        self.env, self.task = env, task_class()
        (minx, miny, minz), (maxx, maxy, maxz) = WORKSPACE
        self._scene = types.SimpleNamespace(_workspace_minx=minx, _workspace_miny=miny, _workspace_minz=minz,
                                            _workspace_maxx=maxx, _workspace_maxy=maxy, _workspace_maxz=maxz)
        self.variation = 0
        self.actions = []
        self.episode = None

    def get_name(self):
        return self.task.name

    def variation_count(self):
        return 3

    def set_variation(self, v):
        if v >= self.variation_count():
            raise TaskEnvironmentError(f"variation {v} out of range")
        self.variation = v

    def get_demos(self, amount, live_demos=False, image_paths=False, callable_each_step=None, max_attempts=10,
                  random_selection=True, from_episode_number=0):
        assert not live_demos and amount == 1 and not random_selection
        folder = Path(self.env.dataset_root) / self.task.name / "all_variations" / "episodes"
        folder = folder / f"episode{from_episode_number}"
        if (folder / "variation_number.pkl").is_file():
            variation = pickle.loads((folder / "variation_number.pkl").read_bytes())
        else:
            variation = from_episode_number % 3
        return [Demo([], random_seed=from_episode_number, variation_number=variation)]

    def reset_to_demo(self, demo):
        self.episode = demo.random_seed
        self.rng = np.random.default_rng(self.episode)
        self.goal = self.rng.uniform([0.0, -0.3, 0.8], [0.5, 0.3, 1.2])
        self.gripper = np.array([0.2, 0.0, 1.3, 0.0, 1.0, 0.0, 0.0, 1.0])
        log = os.environ.get("MIRROR_FAKESIM_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{self.task.name} {self.episode} {os.environ.get('RANK', '0')} {os.getpid()}\n")
        descriptions = [f"{self.task.name.replace('_', ' ')} variation {self.variation}", "paraphrase"]
        return descriptions, Observation(self.env.obs_config, self.rng, self.gripper)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        self.actions.append(action.copy())
        self.task.before_step(action)
        if action.shape != (9,):
            raise InvalidActionError(f"expected 9 values, got {action.shape}")
        if not np.isclose(np.linalg.norm(action[3:7]), 1.0, atol=1e-3):
            raise InvalidActionError("quaternion is not unit length")
        if (action[:3] < WORKSPACE[0] - 1e-6).any() or (action[:3] > WORKSPACE[1] + 1e-6).any():
            raise InvalidActionError("target outside the workspace")
        self.gripper = action[:8].copy()
        reward = float(np.linalg.norm(action[:3] - self.goal) < 0.05)
        return Observation(self.env.obs_config, self.rng, self.gripper), reward, reward >= 1


class Environment:
    def __init__(self, action_mode, dataset_root="", obs_config=None, headless=False, **kwargs):
        self.action_mode, self.dataset_root = action_mode, dataset_root
        self.obs_config, self.headless = obs_config, headless
        self.launched = False

    def launch(self):
        if self.launched:
            raise RuntimeError("already launched")
        self.launched = True

    def shutdown(self):
        self.launched = False

    def get_task(self, task_class):
        if not self.launched:
            self.launch()
        return TaskEnvironment(self, task_class)


class FakeTask:
    """Reaching a goal point succeeds; subclasses script failures."""

    name = "fake"

    def before_step(self, action):
        pass


class IKTask(FakeTask):
    def before_step(self, action):
        raise IKError("no IK solution")


class PathTask(FakeTask):
    def before_step(self, action):
        raise ConfigurationPathError("no path")


class CrashTask(FakeTask):
    def before_step(self, action):
        os.abort()


class HangTask(FakeTask):
    def before_step(self, action):
        import time

        time.sleep(3600)
