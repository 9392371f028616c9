"""The RLBench data module: keyframe samples of PerAct-format episodes (see `mirror.data.keyframes`).

Episodes are split by index (training: the first `episodes` of each task; validation: the next
`val_episodes`, or the first ones of `val_root`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from mirror.benchmarks.rlbench.format import TASKS, episode_indices, episodes_folder
from mirror.benchmarks.rlbench.store import RawStore, build_cache
from mirror.config import MirrorConfig
from mirror.config.inputs import makes, reads
from mirror.data.keyframes.cache import CacheStore, EpisodeKey, cache_folder
from mirror.data.keyframes.datamodule import KeyframeData, KeyframeDataConfig
from mirror.data.paths import writable_folder
from mirror.errors import ConfigError


@dataclass
class RLBenchDataConfig(KeyframeDataConfig):
    root: str = reads("data/rlbench/train")
    val_root: str | None = reads()  # None: validation episodes come after the training ones in `root`
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    cache: str = makes("data/cache/rlbench")  # built from `root` when absent or stale
    use_cache: bool = True  # False reads PNGs directly (slow)
    cache_workers: int = 2
    skip_bad: bool = False  # skip unreadable episodes with a warning instead of failing
    batch_size: int = 24
    test_root: str = reads("data/rlbench/test")  # stored test demos: `mirror eval` episode i restores demo i
    rollout_root: str | None = reads()  # stored demos for the rollouts during training (None: test_root)
    headless: bool = True


class RLBenchData(KeyframeData):
    config_class = RLBenchDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        unknown = [t for t in cfg.data.tasks if t not in TASKS]
        if unknown:
            warnings.warn(f"data.tasks: {unknown} are not among the 18 standard tasks", stacklevel=2)

    def split_keys(self) -> dict[str, tuple[str, list[EpisodeKey]]]:
        """(root, episode keys) of the training, validation and test splits (the test split: the first
        `data.test_episodes` stored test demos per task, when `data.test_root` exists; for held-out recognition)."""
        d = self.cfg.data
        if d.val_root is not None and not Path(d.val_root).is_dir():
            raise ConfigError(f"data.val_root: folder not found: {d.val_root} (null: hold out episodes of data.root)")
        train, val = [], []
        for task in d.tasks:
            present = episode_indices(d.root, task)
            if not present:
                raise ConfigError(f"data.root: no episodes of task '{task}' under {episodes_folder(d.root, task)}")
            train += [(task, i) for i in present[: d.episodes]]
            if d.val_root is None:
                val += [(task, i) for i in present[d.episodes : d.episodes + d.val_episodes]]
            else:
                val += [(task, i) for i in episode_indices(d.val_root, task)[: d.val_episodes]]
        test = [(task, i) for task in d.tasks for i in episode_indices(d.test_root, task)[: d.test_episodes]] \
            if Path(d.test_root).is_dir() else []
        return {"train": (d.root, train), "val": (d.val_root or d.root, val), "test": (d.test_root, test)}

    def build_store(self, split: str):
        d = self.cfg.data
        root, keys = self.split_keys()[split]
        if not d.use_cache:
            return RawStore(root, keys, d.skip_bad)
        folder = writable_folder(cache_folder(d.cache, root), "data.cache")
        with FileLock(str(folder / ".lock")):
            bad = build_cache(root, folder, keys, d.clip_pool, d.cache_workers, d.skip_bad)
        store = CacheStore(folder, [k for k in keys if k not in bad])
        store.skipped += list(bad.values())
        return store

    def missing_training(self) -> str:
        return f"data.root: no readable training episodes under {self.cfg.data.root}"

    def rollout_runner(self):
        from mirror.benchmarks.rlbench.rollouts import RLBenchRollouts

        return RLBenchRollouts(self.cfg, self.spec)
