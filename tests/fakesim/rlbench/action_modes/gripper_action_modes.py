class Discrete:
    def __init__(self, attach_grasped_objects=True, detach_before_open=True):
        self.attach_grasped_objects = attach_grasped_objects
