from rlbench.environment import PathTask


class TurnTap(PathTask):
    name = "turn_tap"
