from rlbench.action_modes.arm_action_modes import assert_action_shape


class Discrete:
    """Open (> 0.5) or closed, as the fork's."""

    def __init__(self, attach_grasped_objects=True, detach_before_open=True):
        self._attach_grasped_objects, self._detach_before_open = attach_grasped_objects, detach_before_open

    def action(self, scene, action):
        assert_action_shape(action, self.action_shape(scene.robot))
        scene.robot.gripper.actuate(float(action[0] > 0.5))

    def action_shape(self, scene):
        return (1,)
