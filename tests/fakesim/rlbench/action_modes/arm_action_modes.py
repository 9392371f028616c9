class EndEffectorPoseViaPlanning:
    def __init__(self, absolute_mode=True, frame="world", collision_checking=False):
        self.absolute_mode, self.frame, self.collision_checking = absolute_mode, frame, collision_checking
