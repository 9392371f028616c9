import inspect

import numpy as np

from rlbench.backend.observation import Observation
from rlbench.backend.robot import START
from rlbench.observation_config import ObservationConfig

DEFAULT_OBS_CONFIG = ObservationConfig()  # one shared default instance, as the real default `ObservationConfig()`
CAMERAS = ("left_shoulder", "right_shoulder", "overhead", "wrist", "front")
OBSERVATION_FIELDS = tuple(inspect.signature(Observation).parameters)


class Scene:
    """The workspace box (the real one is the table's bounding box plus margins) and observations per the config."""

    def __init__(self, pyrep, robot, obs_config=DEFAULT_OBS_CONFIG, robot_setup="panda"):
        self.pyrep, self.robot, self._obs_config, self.robot_setup = pyrep, robot, obs_config, robot_setup
        self.task = None
        self._workspace_minx, self._workspace_maxx = -0.3, 0.7
        self._workspace_miny, self._workspace_maxy = -0.5, 0.5
        self._workspace_minz, self._workspace_maxz = 0.75, 1.75

    def load(self, task):
        self.task = task
        self.robot.arm.planner = task.plan

    def unload(self):
        self.task = None

    def init_episode(self, index, randomly_place=True, max_attempts=5):
        return self.task.init_episode(index)

    def reset(self):
        self.robot.arm.tip_pose = START.copy()
        self.robot.gripper.actuate(1.0)

    def step(self):
        pass

    def check_target_in_workspace(self, target_pos):
        x, y, z = target_pos
        return (self._workspace_maxx > x > self._workspace_minx and self._workspace_maxy > y > self._workspace_miny
                and self._workspace_maxz > z > self._workspace_minz)

    def get_observation(self):
        config, values = self._obs_config, dict.fromkeys(OBSERVATION_FIELDS)
        low = [self._workspace_minx, self._workspace_miny, self._workspace_minz]
        high = [self._workspace_maxx, self._workspace_maxy, self._workspace_maxz]
        for cam in CAMERAS:
            cam_config = getattr(config, f"{cam}_camera")
            size = tuple(cam_config.image_size)
            if cam_config.rgb:
                values[f"{cam}_rgb"] = np.random.randint(0, 256, (*size, 3), dtype=np.uint8)
            if cam_config.point_cloud:
                values[f"{cam}_point_cloud"] = np.random.uniform(low, high, (*size, 3))
            if cam_config.depth:
                values[f"{cam}_depth"] = np.random.uniform(0, 1, size).astype(np.float32)
        open_amount = self.robot.gripper.get_open_amount()
        if config.gripper_open:
            values["gripper_open"] = 1.0 if open_amount[0] > 0.9 else 0.0
        if config.gripper_pose:
            values["gripper_pose"] = self.robot.arm.tip_pose.copy()
        if config.gripper_joint_positions:
            values["gripper_joint_positions"] = np.full(2, 0.04 * open_amount[0])
        values["misc"] = {}
        return Observation(**values)
