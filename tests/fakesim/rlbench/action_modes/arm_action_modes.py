import numpy as np
from pyrep.errors import ConfigurationPathError

from rlbench.backend.exceptions import InvalidActionError


def assert_action_shape(action, expected_shape):
    if np.shape(action) != expected_shape:
        raise InvalidActionError(f"Expected the action shape to be: {expected_shape}, but was: {np.shape(action)}")


def assert_unit_quaternion(quat):
    if not np.isclose(np.linalg.norm(quat), 1.0):
        raise InvalidActionError("Action contained non unit quaternion!")


class EndEffectorPoseViaPlanning:
    """As the fork's: shape, unit quaternion and workspace checks, then a planned path; a path the planner cannot
    find (PyRep's ConfigurationPathError) is raised as InvalidActionError, the planner's error as its cause."""

    def __init__(self, absolute_mode=True, frame="world", collision_checking=False):
        if frame not in ["world", "end effector"]:
            raise ValueError("Expected frame to one of: 'world, 'end effector'")
        self._absolute_mode, self._frame, self._collision_checking = absolute_mode, frame, collision_checking

    def action(self, scene, action, ignore_collisions=True):
        assert_action_shape(action, (7,))
        assert_unit_quaternion(action[3:])
        if not scene.check_target_in_workspace(action[:3]):
            raise InvalidActionError("A path could not be found because the target is outside of workspace.")
        try:
            path = scene.robot.arm.get_path(action[:3], quaternion=action[3:], ignore_collisions=ignore_collisions)
        except ConfigurationPathError as e:
            raise InvalidActionError("A path could not be found. Most likely due to the target being inaccessible "
                                     "or a collison was detected.") from e
        done = False
        while not done:
            done = path.step()
            scene.step()
            success, _ = scene.task.success()
            if success:
                break

    def action_shape(self, scene):
        return (7,)
