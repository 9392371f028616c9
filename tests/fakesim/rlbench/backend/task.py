"""Scripted tasks: the scene places a goal point (from numpy's global random state, which a stored demo
restores, as the real scene places its objects) and the task succeeds when the gripper reaches it; subclasses
script a planner that finds no path, a simulator that crashes, and one that hangs."""

import os
import time

import numpy as np
from pyrep.errors import ConfigurationPathError


class Task:
    name = "fake"

    def __init__(self, pyrep, robot):
        self.pyrep, self.robot = pyrep, robot
        self.goal = None

    def get_name(self):
        return self.name

    def variation_count(self):
        return 3

    def init_episode(self, index):
        self.goal = np.random.uniform([0.0, -0.3, 0.8], [0.5, 0.3, 1.2])
        return [f"{self.name.replace('_', ' ')} variation {index}", "paraphrase"]

    def plan(self, position, quaternion):
        """A path to every pose."""

    def success(self):
        reached = bool(np.linalg.norm(self.robot.arm.tip_pose[:3] - self.goal) < 0.05)
        return reached, reached


class NoPathTask(Task):
    def plan(self, position, quaternion):
        raise ConfigurationPathError("Could not create path.")


class CrashTask(Task):
    def plan(self, position, quaternion):
        os.abort()


class HangTask(Task):
    def plan(self, position, quaternion):
        time.sleep(3600)
