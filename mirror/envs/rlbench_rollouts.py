"""RLBench rollouts of the execution model: one CoppeliaSim per worker process (see `keyframe_rollouts`)."""

from __future__ import annotations

from mirror.config import MirrorConfig
from mirror.envs.keyframe_rollouts import KeyframeRollouts


def make_env(cfg: MirrorConfig):
    """A worker's simulator: RLBench on CoppeliaSim, restoring test episodes from `data.test_root`."""
    from mirror.envs.rlbench import RLBenchEnv

    d = cfg.data
    return RLBenchEnv(d.test_root, headless=d.headless, max_steps=d.rollout_max_steps)


class RLBenchRollouts(KeyframeRollouts):
    """The rollout runner of the RLBench data: which test episodes, run by a pool of simulator processes."""

    make_env = staticmethod(make_env)
