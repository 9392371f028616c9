from rlbench.backend import task


class CrashTask(task.CrashTask):
    name = "crash_task"
