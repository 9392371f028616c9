from rlbench.backend import task


class TurnTap(task.NoPathTask):
    name = "turn_tap"
