from rlbench.backend import task


class PushButtons(task.Task):
    name = "push_buttons"
