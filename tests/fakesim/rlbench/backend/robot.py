"""The fake's stand-in for PyRep's Panda arm and gripper: a tip pose that a planned path moves in one step."""

import numpy as np


class Path:
    def __init__(self, arm, pose):
        self._arm, self._pose = arm, pose

    def step(self):
        self._arm.tip_pose = self._pose
        return True


START = np.array([0.2, 0.0, 1.3, 0.0, 1.0, 0.0, 0.0])


class Arm:
    def __init__(self):
        self.tip_pose = START.copy()
        self.planner = None  # the loaded task's `plan`: it raises PyRep's ConfigurationPathError for no path

    def get_path(self, position, quaternion, ignore_collisions=False):
        self.planner(np.asarray(position), np.asarray(quaternion))
        return Path(self, np.concatenate([position, quaternion]))


class Gripper:
    def __init__(self):
        self.open_amount = 1.0

    def actuate(self, amount):
        self.open_amount = amount

    def get_open_amount(self):
        return [self.open_amount, self.open_amount]


class Robot:
    def __init__(self, arm, gripper):
        self.arm, self.gripper = arm, gripper
