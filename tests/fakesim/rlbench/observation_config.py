from pyrep.const import RenderMode

from rlbench.noise_model import Identity

IDENTITY = Identity()  # one shared default instance, as the real defaults `Identity()` are


class CameraConfig:
    def __init__(self, rgb=True, rgb_noise=IDENTITY, depth=True, depth_noise=IDENTITY, point_cloud=True, mask=True,
                 image_size=(128, 128), render_mode=RenderMode.OPENGL3, masks_as_one_channel=True,
                 depth_in_meters=False):
        self.rgb, self.rgb_noise, self.depth, self.depth_noise = rgb, rgb_noise, depth, depth_noise
        self.point_cloud, self.mask, self.image_size, self.render_mode = point_cloud, mask, image_size, render_mode
        self.masks_as_one_channel, self.depth_in_meters = masks_as_one_channel, depth_in_meters

    def set_all(self, value: bool):
        self.rgb = self.depth = self.point_cloud = self.mask = value


class ObservationConfig:
    def __init__(self, left_shoulder_camera=None, right_shoulder_camera=None, overhead_camera=None, wrist_camera=None,
                 front_camera=None, joint_velocities=True, joint_velocities_noise=IDENTITY, joint_positions=True,
                 joint_positions_noise=IDENTITY, joint_forces=True, joint_forces_noise=IDENTITY, gripper_open=True,
                 gripper_pose=True, gripper_matrix=False, gripper_joint_positions=False, gripper_touch_forces=False,
                 wrist_camera_matrix=False, record_gripper_closing=False, task_low_dim_state=False,
                 record_ignore_collisions=True):
        self.left_shoulder_camera = left_shoulder_camera or CameraConfig()
        self.right_shoulder_camera = right_shoulder_camera or CameraConfig()
        self.overhead_camera = overhead_camera or CameraConfig()
        self.wrist_camera = wrist_camera or CameraConfig()
        self.front_camera = front_camera or CameraConfig()
        self.joint_velocities, self.joint_velocities_noise = joint_velocities, joint_velocities_noise
        self.joint_positions, self.joint_positions_noise = joint_positions, joint_positions_noise
        self.joint_forces, self.joint_forces_noise = joint_forces, joint_forces_noise
        self.gripper_open, self.gripper_pose, self.gripper_matrix = gripper_open, gripper_pose, gripper_matrix
        self.gripper_joint_positions, self.gripper_touch_forces = gripper_joint_positions, gripper_touch_forces
        self.wrist_camera_matrix, self.record_gripper_closing = wrist_camera_matrix, record_gripper_closing
        self.task_low_dim_state, self.record_ignore_collisions = task_low_dim_state, record_ignore_collisions
