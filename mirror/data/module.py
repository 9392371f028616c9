"""The base of every data module: the resumable training loader, sharded validation, the data spec."""

from __future__ import annotations

import signal
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset, default_collate

from mirror import registry
from mirror.config import DataConfig, MirrorConfig
from mirror.data.sampling import Draw, StepBatchSampler, shard
from mirror.errors import ConfigError, MirrorError
from mirror.models.protocol import DataSpec


def build_datamodule(cfg: MirrorConfig) -> MirrorDataModule:
    """The data module named by `data.name`, built from the config."""
    return registry.resolve("data", cfg.data.name)(cfg)


def worker_init(worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the training process, which stops at the next step with a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pl_worker_init_function(worker_id)


class MirrorDataModule(L.LightningDataModule, metaclass=ABCMeta):
    """Subclasses provide `spec`, `train_set()`, `val_set()` and optionally `collate` / `val_collate`.

    Training items are fetched with `Draw(index, seed)` keys; validation items with plain indices.
    """

    config_class = DataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__()
        self.cfg = cfg

    @property
    @abstractmethod
    def spec(self) -> DataSpec:
        """The instruction texts and task names that the batch keys index."""

    @abstractmethod
    def train_set(self) -> Dataset:
        """The training items, fetched with `Draw` keys."""

    def val_set(self) -> Dataset | None:
        return None

    def sample_weights(self, dataset: Dataset) -> torch.Tensor | None:
        """Per-item sampling weights for training (None: a uniform permutation per epoch)."""
        return None

    def rollout_runner(self):
        """The runner of this data's evaluation episodes in its environment, or None (see training.rollouts)."""
        return None

    def callbacks(self) -> list[Callback]:
        """Callbacks this data brings to training, such as rollout evaluation in its environment."""
        return []

    collate: Callable[[list[Any]], Any] = staticmethod(default_collate)  # training batches
    val_collate: Callable[[list[Any]], Any] = staticmethod(default_collate)  # validation batches

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        trainer, data = self.trainer, self.cfg.data
        rank, world = self._rank_world()
        consumed = trainer.global_step * trainer.accumulate_grad_batches if trainer is not None else 0
        dataset = self.train_set()
        if len(dataset) < data.batch_size * world:
            raise ConfigError(f"data.batch_size={data.batch_size} x {world} process(es) is more than the "
                              f"{len(dataset)} training items of data '{data.name}'")
        sampler = StepBatchSampler(len(dataset), data.batch_size, self.cfg.seed, rank, world, consumed,
                                   self.sample_weights(dataset))
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=data.num_workers,
            collate_fn=self.collate,
            persistent_workers=data.num_workers > 0,
            worker_init_fn=worker_init,
        )

    def feature_loader(self, split: str) -> DataLoader:
        """Every item of a split in order and unsharded, for feature extraction (probing). Training items
        come with fixed `Draw` keys, so partners follow the positive rule and are the same every time."""
        dataset = self.train_set() if split == "train" else self.val_set()
        if dataset is None:
            raise MirrorError(f"data '{self.cfg.data.name}' has no {split} split")
        keys = [Draw(i, (self.cfg.seed, 0, i)) for i in range(len(dataset))] if split == "train" else None
        return DataLoader(dataset, batch_size=self.cfg.data.val_batch_size, sampler=keys, worker_init_fn=worker_init,
                          num_workers=self.cfg.data.num_workers, collate_fn=self.val_collate)

    def val_dataloader(self) -> DataLoader | list:
        dataset = self.val_set()
        if dataset is None:
            return []
        rank, world = self._rank_world()
        return DataLoader(
            dataset,
            batch_size=self.cfg.data.val_batch_size,
            sampler=shard(len(dataset), rank, world),
            num_workers=self.cfg.data.num_workers,
            collate_fn=self.val_collate,
            worker_init_fn=worker_init,
        )
