from rlbench.environment import HangTask


class HangTask(HangTask):
    name = "hang_task"
