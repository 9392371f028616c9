"""Meta-World rollouts of the execution model: one MuJoCo simulator per worker process (see `keyframe_rollouts`).

Episode i of a task starts from the rollout seed `episode_seed(data.demo_seed, "rollout", i + r * STRIDE)` in
repeat r: scenes never seen in the demonstrations, the same at every evaluation, and fresh ones in each repeat
(the physics and the greedy policy are deterministic, so repeating a scene would repeat its outcome).
"""

from __future__ import annotations

from mirror.config import MirrorConfig
from mirror.data.metaworld.demos import STRIDE, instructions
from mirror.data.seeds import episode_seed
from mirror.envs.keyframe_rollouts import KeyframeRollouts


def make_env(cfg: MirrorConfig):
    """A worker's simulator: Meta-World's tasks at the rollout seeds, the first instruction of each task."""
    from mirror.envs.metaworld import CAMERAS, MetaWorldEnv

    d = cfg.data
    texts = {task: sentences[0] for task, sentences in instructions().items()}
    return MetaWorldEnv(lambda task, index, repeat: episode_seed(d.demo_seed, "rollout", index + repeat * STRIDE),
                        texts, CAMERAS, d.image_size, d.rollout_max_steps)


class MetaWorldRollouts(KeyframeRollouts):
    """The rollout runner of the Meta-World data: which rollout scenes, run by a pool of simulator processes."""

    make_env = staticmethod(make_env)
