"""A Meta-World rollout runner whose simulator fails on chosen episodes, for the worker-fault test: episode
`CRASH` kills its worker process (as a segfaulting simulator would), episode `HANG` never returns; every other
episode runs in real MuJoCo. Top-level names, as spawned workers import them."""

import os
import time

from mirror.benchmarks.metaworld.rollouts import MetaWorldRollouts
from mirror.benchmarks.metaworld.rollouts import make_env as real_env

CRASH, HANG = 1, 2


class FaultyEnv:
    def __init__(self, env):
        self.env = env

    def run_episode(self, task: str, index: int, policy, repeat: int = 0, told: str = "instruction",
                    video: bool = False):
        if index == CRASH:
            os.abort()
        if index == HANG:
            time.sleep(3600)
        return self.env.run_episode(task, index, policy, repeat, told, video)


def make_env(cfg, split):
    return FaultyEnv(real_env(cfg, split))


class FaultyRollouts(MetaWorldRollouts):
    make_env = staticmethod(make_env)
