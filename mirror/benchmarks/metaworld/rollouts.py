"""Meta-World rollouts of the execution model: one MuJoCo simulator per worker process (see `keyframe_rollouts`).

Episode i of a task in repeat r starts from `scene_seed` in the split's seed range (`rollout` during training,
`test` in `mirror eval`): scenes never seen in the demonstrations, the same at every evaluation, fresh ones in
each repeat (the physics and the greedy policy are deterministic, so repeating a scene would repeat its
outcome), with the variations of a task taking turns.
"""

from __future__ import annotations

from mirror.config import MirrorConfig
from mirror.rollouts.keyframe import KeyframeRollouts


def make_env(cfg: MirrorConfig, split: str):
    """A worker's simulator: Meta-World's tasks at the split's scenes."""
    from mirror.benchmarks.metaworld.env import MetaWorldEnv
    from mirror.benchmarks.metaworld.scene import CAMERAS

    d = cfg.data
    return MetaWorldEnv(d.demo_seed, split, CAMERAS, d.image_size, d.rollout_max_steps)


class MetaWorldRollouts(KeyframeRollouts):
    """The rollout runner of the Meta-World data: which rollout scenes, run by a pool of simulator processes."""

    make_env = staticmethod(make_env)
    video_fps = 20  # one frame every 4 env steps of 12.5 ms: real time
