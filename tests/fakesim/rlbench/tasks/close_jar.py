from rlbench.environment import IKTask


class CloseJar(IKTask):
    name = "close_jar"
