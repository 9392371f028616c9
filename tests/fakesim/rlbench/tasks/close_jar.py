from rlbench.backend import task


class CloseJar(task.Task):
    name = "close_jar"
