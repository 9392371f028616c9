"""The Meta-World data module: keyframe samples of scripted-expert demonstrations (see `mirror.data.keyframes`).

The demonstrations are the cache: `<data.cache>/{train,val}/<task>/episode<i>/`, as `mirror demos metaworld`
writes them. Missing or outdated episodes are recorded before training starts (one process at a time, the
others wait), so `mirror train configs/metaworld/mirror.yaml` is the whole job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from filelock import FileLock

from mirror.config import MirrorConfig
from mirror.data.keyframes.cache import CacheStore
from mirror.data.keyframes.datamodule import KeyframeData, KeyframeDataConfig
from mirror.data.metaworld.demos import Request, generate
from mirror.data.paths import writable_folder
from mirror.envs.metaworld import CAMERAS, MT10, check_tasks


@dataclass
class MetaWorldDataConfig(KeyframeDataConfig):
    tasks: list[str] = field(default_factory=lambda: list(MT10))
    episodes: int = 20  # training demonstrations per task
    val_episodes: int = 5
    cache: str = "data/metaworld"  # the demonstrations themselves (`mirror demos metaworld --out`)
    demo_seed: int = 0  # base of the episode seeds (training, validation and rollout ranges are disjoint)
    demo_workers: int = 2
    image_size: int = 128  # camera images (square), in the demonstrations and in rollouts
    rollout_timeout: float = 300.0
    rollout_max_steps: int = 15  # key poses per rollout episode (the task's 500 env steps bound it too)


class MetaWorldData(KeyframeData):
    config_class = MetaWorldDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        check_tasks(list(cfg.data.tasks), "data.tasks")
        check_tasks(list(cfg.data.rollout_tasks or []), "data.rollout_tasks")

    @cached_property
    def demos(self) -> Path:
        """The cache folder, its demonstrations of both splits brought up to date (once per data module)."""
        d = self.cfg.data
        root = writable_folder(d.cache, "data.cache")
        request = Request(d.demo_seed, CAMERAS, d.image_size, d.clip_pool)
        with FileLock(str(root / ".lock")):
            generate(root, d.tasks, {"train": d.episodes, "val": d.val_episodes}, request, d.demo_workers)
        return root

    def build_store(self, split: str) -> CacheStore:
        d = self.cfg.data
        count = d.episodes if split == "train" else d.val_episodes
        return CacheStore(self.demos / split, [(task, i) for task in d.tasks for i in range(count)])

    def missing_training(self) -> str:
        return f"data.episodes: no training demonstrations under {Path(self.cfg.data.cache) / 'train'}"

    def rollout_runner(self):
        from mirror.envs.metaworld_rollouts import MetaWorldRollouts

        return MetaWorldRollouts(self.cfg, self.spec)
