"""The data module base of the keyframe benchmarks: keyframe samples for the execution model, paired
front-camera clips for U.

A benchmark provides each split's store (episode records, observations, clips) and its rollout runner;
this base builds the data spec, the samples, the task-uniform training weights and the rollout callback.
Training draws tasks uniformly (as ARP does), then a sample of that task; each sample's partner clip follows
the alignment's positive rule.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from mirror.config import DataConfig, MirrorConfig
from mirror.config.inputs import makes
from mirror.data.keyframes.samples import KeyframeSamples
from mirror.data.module import MirrorDataModule
from mirror.errors import ConfigError
from mirror.models.protocol import DataSpec


class CollisionLabel(str, Enum):
    """Which frame's `ignore_collisions` flag a keyframe sample learns."""

    keyframe = "keyframe"  # the keyframe's own (ARP)
    previous = "previous"  # the frame before the keyframe (PerAct, RVT)


@dataclass
class KeyframeDataConfig(DataConfig):
    tasks: list[str] = field(default_factory=list)
    episodes: int = 100  # training episodes per task
    val_episodes: int = 25  # validation episodes per task
    cache: str = makes("data/cache")
    clip_frames: int = 8
    clip_pool: int = 32  # front frames kept per episode in the cache, clips are sampled among them
    clip_span: float = 1.0  # U's clips come from this first fraction of each episode
    task_uniform: bool = True
    collision_label: CollisionLabel = CollisionLabel.keyframe
    rollout_tasks: list[str] | None = None  # None: all of `tasks`
    rollout_episodes: int = 0  # per task at each validation (0: no rollouts during training)
    rollout_workers: int = 1  # simulator processes
    rollout_timeout: float = 900.0  # seconds one episode may take before its worker is replaced
    rollout_max_steps: int = 25  # key poses per episode
    rollout_video: int = 1  # episodes per task filmed at each validation (MP4 in the run, and to W&B)
    test_episodes: int = 25  # `mirror eval`'s episodes per task, in each repeat
    test_repeats: int = 3  # `mirror eval`'s repeated evaluations


class KeyframeData(MirrorDataModule):
    """Subclasses provide `build_store(split)`, `missing_training()` and `rollout_runner()`."""

    config_class = KeyframeDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        d = cfg.data
        frames = getattr(cfg.understanding, "frames", d.clip_frames)
        if frames != d.clip_frames:
            raise ConfigError(f"data.clip_frames={d.clip_frames} but understanding.frames={frames}")
        if not 0 < d.clip_span <= 1:
            raise ConfigError(f"data.clip_span={d.clip_span}: must be a fraction of the episode in (0, 1]")
        self._stores: dict[str, object] = {}
        self._spec: DataSpec | None = None

    @abstractmethod
    def build_store(self, split: str):
        """The store of a split (`train` or `val`): `episodes` (EpisodeInfo), `skipped`, `observation`, `clip`."""

    @abstractmethod
    def missing_training(self) -> str:
        """The one-line error when no training episode can be read, naming the key and the place."""

    def store(self, split: str):
        if split not in self._stores:
            s = self._stores[split] = self.build_store(split)
            rank_zero_info(f"{self.cfg.data.name} {split}: {len(s.episodes)} episodes, "
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

    def _samples(self, split: str) -> KeyframeSamples | None:
        store = self.store(split)
        if not store.episodes:
            return None
        first = 0 if split == "train" else len(self.store("train").episodes)
        d = self.cfg.data
        return KeyframeSamples(store, self.spec, self.cfg.align.positives, d.clip_frames, first,
                               d.collision_label == CollisionLabel.previous, d.clip_span)

    def clips(self, split: str, span: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """One evaluation clip per episode of a split, from the first `span` of it: (E, T, H, W, 3) frames,
        the episodes' instruction and task indices; None when the split has no episodes."""
        store = self.store(split)
        if not store.episodes:
            return None
        index = {t: i for i, t in enumerate(self.spec.instructions)}
        videos = np.stack([store.clip(e, self.cfg.data.clip_frames, None, span) for e in range(len(store.episodes))])
        return (videos, np.array([index[ep.descriptions[0]] for ep in store.episodes]),
                np.array([self.spec.tasks.index(ep.task) for ep in store.episodes]))

    def train_set(self) -> Dataset:
        samples = self._samples("train")
        if samples is None:
            raise ConfigError(self.missing_training())
        return samples

    def val_set(self) -> Dataset | None:
        return self._samples("val")

    def sample_weights(self, dataset: Dataset) -> torch.Tensor | None:
        return dataset.weights() if self.cfg.data.task_uniform else None

    def callbacks(self) -> list[Callback]:
        from mirror.rollouts.evaluation import RolloutEvaluation

        d = self.cfg.data
        return [RolloutEvaluation(self.rollout_runner(), video=d.rollout_video)] if d.rollout_episodes > 0 else []
