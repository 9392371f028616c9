from os.path import exists

from rlbench.backend.robot import Arm, Gripper, Robot
from rlbench.backend.scene import DEFAULT_OBS_CONFIG, Scene
from rlbench.task_environment import TaskEnvironment


class Environment:
    def __init__(self, action_mode, dataset_root="", obs_config=DEFAULT_OBS_CONFIG, headless=False,
                 static_positions=False, robot_setup="panda", randomize_every=None, frequency=1,
                 visual_randomization_config=None, dynamics_randomization_config=None, attach_grasped_objects=True):
        self._dataset_root, self._action_mode, self._obs_config = dataset_root, action_mode, obs_config
        self._headless, self._static_positions, self._robot_setup = headless, static_positions, robot_setup.lower()
        self._randomize_every, self._frequency = randomize_every, frequency
        self._visual_randomization_config = visual_randomization_config
        self._dynamics_randomization_config = dynamics_randomization_config
        self._attach_grasped_objects = attach_grasped_objects
        if robot_setup != "panda":
            raise ValueError("the fake has the panda only")
        if len(self._dataset_root) > 0 and not exists(self._dataset_root):
            raise RuntimeError(f"Data set root does not exists: {self._dataset_root}")
        self._pyrep = self._robot = self._scene = self._prev_task = None

    def launch(self):
        if self._pyrep is not None:
            raise RuntimeError("Already called launch!")
        self._pyrep = object()
        self._robot = Robot(Arm(), Gripper())
        self._scene = Scene(self._pyrep, self._robot, self._obs_config, self._robot_setup)

    def shutdown(self):
        self._pyrep = None

    def get_task(self, task_class):
        if self._pyrep is None:
            self.launch()
        self._scene.unload()
        task = task_class(self._pyrep, self._robot)
        self._prev_task = task
        return TaskEnvironment(self._pyrep, self._robot, self._scene, task, self._action_mode, self._dataset_root,
                               self._obs_config, self._static_positions, self._attach_grasped_objects)
