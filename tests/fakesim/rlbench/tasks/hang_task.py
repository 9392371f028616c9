from rlbench.backend import task


class HangTask(task.HangTask):
    name = "hang_task"
