from pyrep.const import RenderMode


class CameraConfig:
    def __init__(self, rgb=True, depth=True, point_cloud=True, mask=True, image_size=(128, 128),
                 render_mode=RenderMode.OPENGL3, masks_as_one_channel=True, depth_in_meters=False):
        self.rgb, self.depth, self.point_cloud, self.mask = rgb, depth, point_cloud, mask
        self.image_size, self.render_mode = tuple(image_size), render_mode
        self.masks_as_one_channel, self.depth_in_meters = masks_as_one_channel, depth_in_meters

    def set_all(self, value: bool) -> None:
        self.rgb = self.depth = self.point_cloud = self.mask = value


class ObservationConfig:
    def __init__(self, left_shoulder_camera=None, right_shoulder_camera=None, overhead_camera=None,
                 wrist_camera=None, front_camera=None, joint_velocities=True, joint_positions=True,
                 joint_forces=True, gripper_open=True, gripper_pose=True, gripper_matrix=False,
                 gripper_joint_positions=False, gripper_touch_forces=False, task_low_dim_state=False):
        self.left_shoulder_camera = left_shoulder_camera or CameraConfig()
        self.right_shoulder_camera = right_shoulder_camera or CameraConfig()
        self.overhead_camera = overhead_camera or CameraConfig()
        self.wrist_camera = wrist_camera or CameraConfig()
        self.front_camera = front_camera or CameraConfig()
        self.gripper_joint_positions = gripper_joint_positions
