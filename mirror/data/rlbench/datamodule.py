"""The RLBench data module: keyframe samples for the execution model, paired front-camera clips for U.

Episodes are split by index (training: the first `episodes` of each task; validation: the next
`val_episodes`, or the first ones of `val_root`). Training draws tasks uniformly (as ARP does), then a
sample of that task; each sample's partner clip follows the alignment's positive rule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from mirror.config import DataConfig, MirrorConfig, Positives
from mirror.data.module import MirrorDataModule
from mirror.data.rlbench.episode import world_points
from mirror.data.rlbench.format import TASKS, episode_indices, episodes_folder
from mirror.data.rlbench.store import CacheStore, EpisodeKey, RawStore, build_cache, cache_folder
from mirror.data.sampling import Draw
from mirror.errors import ConfigError
from mirror.models.protocol import DataSpec


@dataclass
class RLBenchDataConfig(DataConfig):
    root: str = "data/rlbench/train"
    val_root: str | None = None  # None: validation episodes come after the training ones in `root`
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    episodes: int = 100  # training episodes per task
    val_episodes: int = 25  # validation episodes per task
    cache: str = "data/cache/rlbench"
    use_cache: bool = True  # False reads PNGs directly (slow)
    cache_workers: int = 2
    clip_frames: int = 8
    clip_pool: int = 32  # front frames kept per episode in the cache, clips are sampled among them
    skip_bad: bool = False  # skip unreadable episodes with a warning instead of failing
    task_uniform: bool = True
    batch_size: int = 24
    test_root: str = "data/rlbench/test"  # stored test demos: evaluation episode i restores demo i
    rollout_tasks: list[str] | None = None  # None: all of `tasks`
    rollout_episodes: int = 0  # per task at each validation (0: no rollouts during training)
    rollout_workers: int = 1  # CoppeliaSim processes
    rollout_timeout: float = 900.0  # seconds one episode may take before its worker is replaced
    rollout_max_steps: int = 25
    headless: bool = True


class RLBenchSamples(Dataset):
    """Keyframe samples of a set of episodes, each with a partner clip for the understanding model."""

    def __init__(self, store, spec: DataSpec, positives: Positives, clip_frames: int, first_episode: int):
        self.store, self.positives, self.clip_frames = store, positives, clip_frames
        index = {t: i for i, t in enumerate(spec.instructions)}
        episodes = store.episodes
        self.instruction = np.array([index[ep.descriptions[0]] for ep in episodes])
        self.task = np.array([spec.tasks.index(ep.task) for ep in episodes])
        self.episode_id = first_episode + np.arange(len(episodes))
        self.items = [(e, k) for e, ep in enumerate(episodes) for k in range(len(ep.samples))]
        self.groups = {
            Positives.instruction: {i: np.flatnonzero(self.instruction == i) for i in np.unique(self.instruction)},
            Positives.task: {i: np.flatnonzero(self.task == i) for i in np.unique(self.task)},
        }

    def __len__(self) -> int:
        return len(self.items)

    def weights(self) -> torch.Tensor:
        """Uniform over tasks, then over the task's samples."""
        tasks = self.task[[e for e, _ in self.items]]
        counts = np.bincount(tasks)
        return torch.as_tensor(1.0 / counts[tasks], dtype=torch.double)

    def partner(self, e: int, rng: np.random.Generator | None) -> int:
        if rng is None or self.positives == Positives.episode:
            return e
        key = self.instruction[e] if self.positives == Positives.instruction else self.task[e]
        return int(rng.choice(self.groups[self.positives][key]))

    def __getitem__(self, key: Draw | int) -> dict:
        i, rng = (key.index, np.random.default_rng(key.seed)) if isinstance(key, Draw) else (key, None)
        e, k = self.items[i]
        sample = self.store.episodes[e].samples[k]
        obs = self.store.observation(e, k)
        p = self.partner(e, rng)
        ids = {"episode": int(self.episode_id[e]), "instruction": int(self.instruction[e]), "task": int(self.task[e])}
        return {
            "understanding": {"video": self.store.clip(p, self.clip_frames, rng),
                              "instruction": int(self.instruction[p]), "task": int(self.task[p])},
            "execution": {
                "rgb": obs["rgb"], "xyz": world_points(obs),
                "proprio": np.asarray(sample.proprio, dtype=np.float32),
                "pose": np.asarray(sample.pose, dtype=np.float32),
                "gripper_open": np.float32(sample.gripper_open),
                "ignore_collisions": np.float32(sample.ignore_collisions),
                "step": sample.step, "instruction": ids["instruction"], "task": ids["task"],
            },
            "keys": ids,
        }


class RLBenchData(MirrorDataModule):
    config_class = RLBenchDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        d = cfg.data
        unknown = [t for t in d.tasks if t not in TASKS]
        if unknown:
            warnings.warn(f"data.tasks: {unknown} are not among the 18 standard tasks", stacklevel=2)
        frames = getattr(cfg.understanding, "frames", d.clip_frames)
        if frames != d.clip_frames:
            raise ConfigError(f"data.clip_frames={d.clip_frames} but understanding.frames={frames}")
        self._stores: dict[str, object] = {}
        self._spec: DataSpec | None = None

    def split_keys(self) -> dict[str, tuple[str, list[EpisodeKey]]]:
        """(root, episode keys) of the training and validation splits."""
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
        return {"train": (d.root, train), "val": (d.val_root or d.root, val)}

    def store(self, split: str):
        if split not in self._stores:
            d = self.cfg.data
            root, keys = self.split_keys()[split]
            if d.use_cache:
                folder = cache_folder(d.cache, root)
                folder.mkdir(parents=True, exist_ok=True)
                with FileLock(str(folder / ".lock")):
                    build_cache(root, folder, keys, d.clip_pool, d.cache_workers, d.skip_bad)
                self._stores[split] = CacheStore(folder, keys)
            else:
                self._stores[split] = RawStore(root, keys, d.skip_bad)
            s = self._stores[split]
            rank_zero_info(f"rlbench {split}: {len(s.episodes)} episodes, "
                           f"{sum(len(e.samples) for e in s.episodes)} samples, {len(s.skipped)} skipped")
        return self._stores[split]

    def prepare_data(self) -> None:
        for split in ("train", "val"):
            self.store(split)

    @property
    def spec(self) -> DataSpec:
        if self._spec is None:
            variations = {}
            for split in ("train", "val"):
                for ep in self.store(split).episodes:
                    variations.setdefault((ep.task, ep.variation), ep.descriptions[0])
            texts = list(dict.fromkeys(variations[k] for k in sorted(variations)))
            self._spec = DataSpec(instructions=texts, tasks=list(self.cfg.data.tasks))
        return self._spec

    def _samples(self, split: str) -> RLBenchSamples | None:
        store = self.store(split)
        if not store.episodes:
            return None
        first = 0 if split == "train" else len(self.store("train").episodes)
        return RLBenchSamples(store, self.spec, self.cfg.align.positives, self.cfg.data.clip_frames, first)

    def train_set(self) -> Dataset:
        samples = self._samples("train")
        if samples is None:
            raise ConfigError(f"data.root: no readable training episodes under {self.cfg.data.root}")
        return samples

    def val_set(self) -> Dataset | None:
        return self._samples("val")

    def sample_weights(self, dataset: Dataset) -> torch.Tensor | None:
        return dataset.weights() if self.cfg.data.task_uniform else None

    def rollout_runner(self):
        from mirror.envs.rlbench_rollouts import RLBenchRollouts

        return RLBenchRollouts(self.cfg, self.spec)

    def callbacks(self) -> list[Callback]:
        from mirror.training.rollouts import RolloutEvaluation

        return [RolloutEvaluation(self.rollout_runner())] if self.cfg.data.rollout_episodes > 0 else []
