from rlbench.backend import task


class OpenDrawer(task.Task):
    name = "open_drawer"
