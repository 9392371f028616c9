"""RLBench rollouts of the execution model: one CoppeliaSim per worker process (see `keyframe_rollouts`)."""

from __future__ import annotations

from mirror.config import MirrorConfig
from mirror.rollouts.keyframe import KeyframeRollouts


def make_env(cfg: MirrorConfig, split: str):
    """A worker's simulator: RLBench on CoppeliaSim, restoring stored episodes: `data.test_root`'s in `mirror
    eval`, `data.rollout_root`'s (the test root when unset) for the rollouts during training."""
    from mirror.benchmarks.rlbench.env import RLBenchEnv

    d = cfg.data
    root = d.test_root if split == "test" else d.rollout_root or d.test_root
    return RLBenchEnv(root, headless=d.headless, max_steps=d.rollout_max_steps)


class RLBenchRollouts(KeyframeRollouts):
    """The rollout runner of the RLBench data: which test episodes, run by a pool of simulator processes."""

    make_env = staticmethod(make_env)
    video_fps = 2  # one frame per key pose
