from rlbench import utils
from rlbench.backend.exceptions import TaskEnvironmentError


class TaskEnvironment:
    def __init__(self, pyrep, robot, scene, task, action_mode, dataset_root, obs_config, static_positions=False,
                 attach_grasped_objects=True):
        self._pyrep, self._robot, self._scene, self._task = pyrep, robot, scene, task
        self._variation_number = 0
        self._action_mode, self._dataset_root, self._obs_config = action_mode, dataset_root, obs_config
        self._static_positions, self._attach_grasped_objects = static_positions, attach_grasped_objects
        self._reset_called = False
        self._scene.load(self._task)

    def get_name(self):
        return self._task.get_name()

    def set_variation(self, v):
        if v >= self.variation_count():
            raise TaskEnvironmentError(
                f"Requested variation {v}, but there are only {self.variation_count()} variations.")
        self._variation_number = v

    def variation_count(self):
        return self._task.variation_count()

    def reset(self):
        self._scene.reset()
        desc = self._scene.init_episode(self._variation_number, randomly_place=not self._static_positions)
        self._reset_called = True
        return desc, self._scene.get_observation()

    def step(self, action):
        if not self._reset_called:
            raise RuntimeError("Call 'reset' before calling 'step' on a task.")
        self._action_mode.action(self._scene, action)
        success, terminate = self._task.success()
        return self._scene.get_observation(), float(success), terminate

    def get_demos(self, amount, live_demos=False, image_paths=False, callable_each_step=None, max_attempts=10,
                  random_selection=True, from_episode_number=0):
        if live_demos:
            raise RuntimeError("the fake has no live demos")
        if self._dataset_root is None or len(self._dataset_root) == 0:
            raise RuntimeError("Can't ask for a stored demo when no dataset root provided.")
        return utils.get_stored_demos(amount, image_paths, self._dataset_root, self._variation_number,
                                      self._task.get_name(), self._obs_config, random_selection, from_episode_number)

    def reset_to_demo(self, demo):
        demo.restore_state()
        return self.reset()
