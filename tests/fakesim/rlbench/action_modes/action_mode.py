class MoveArmThenGripper:
    def __init__(self, arm_action_mode, gripper_action_mode):
        self.arm_action_mode, self.gripper_action_mode = arm_action_mode, gripper_action_mode
