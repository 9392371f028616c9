from rlbench.environment import CrashTask


class CrashTask(CrashTask):
    name = "crash_task"
