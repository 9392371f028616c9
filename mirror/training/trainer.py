"""The Lightning Trainer of a run: devices, nodes, DDP, precision, checkpoints, validation cadence."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy

from mirror.config import MirrorConfig
from mirror.training.checkpoint import RunCheckpointIO, atomic_copy
from mirror.training.progress import build_progress_bar


def cpu_threads(cfg: MirrorConfig) -> int | None:
    """Torch threads for each training process: `trainer.threads`, or when training on CPUs the cores this
    process may use, shared among the node's training processes (more threads than cores stall every parallel
    op on the slowest thread; loader workers sleep most of a step). None: leave torch's choice (GPU training)."""
    t = cfg.trainer
    if t.threads is not None:
        return t.threads
    on_cpu = t.accelerator == "cpu" or (t.accelerator == "auto" and not torch.cuda.is_available())
    if not on_cpu:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = t.devices if t.devices > 0 else 1
    return max(1, cores // processes)


def save_step(trainer: L.Trainer) -> Path:
    """Checkpoint the current step (unless done already) and make it `last.ckpt`; every rank must call it."""
    folder = Path(trainer.checkpoint_callback.dirpath)
    path = folder / f"step{trainer.global_step:07d}.ckpt"
    if not path.exists():
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            atomic_copy(path, folder / "last.ckpt")
    return path


class FinalCheckpoint(Callback):
    """Also checkpoint the last step when it is not a multiple of `trainer.ckpt_every` (and point last.ckpt at it)."""

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        save_step(trainer)


class ValidationRecord(Callback):
    """Rank 0 writes every validation's metrics to `<run>/validation/step<N>.json` (read by `mirror report`)."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        folder = Path(trainer.default_root_dir) / "validation"
        folder.mkdir(parents=True, exist_ok=True)
        values = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (folder / f"step{trainer.global_step:07d}.json").write_text(json.dumps(values, indent=1))


def find_unused_parameters(cfg: MirrorConfig) -> bool:
    """DDP must expect idle parameters whenever a branch runs without its task loss on some steps."""
    if cfg.trainer.find_unused_parameters is not None:
        return cfg.trainer.find_unused_parameters
    align_on = cfg.align.weight > 0
    u = cfg.understanding
    u_idle = align_on and u.weight == 0 or u.weight > 0 and u.fraction < 1
    e_idle = align_on and cfg.execution.weight == 0
    return u_idle or e_idle


def build_strategy(cfg: MirrorConfig):
    t = cfg.trainer
    several = t.devices != 1 or t.num_nodes > 1
    if t.strategy == "ddp" or (t.strategy == "auto" and several):
        return DDPStrategy(
            timeout=timedelta(minutes=t.ddp_timeout_min), find_unused_parameters=find_unused_parameters(cfg)
        )
    return t.strategy


BEST = "rollout/success"  # what `checkpoints/best.ckpt` is chosen by, when the data rolls out during training


def build_trainer(
    cfg: MirrorConfig, run_dir: Path, logger: Logger | list[Logger] | bool, callbacks: Sequence[Callback] = (),
    best: bool = False
) -> L.Trainer:
    """The run's trainer; with `best`, `checkpoints/best.ckpt` also keeps the step with the highest `BEST`."""
    t = cfg.trainer
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=t.ckpt_every,
        save_top_k=-1,
        save_last=True,
    )
    best_checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=BEST, mode="max",
                                      save_top_k=1, enable_version_counter=False)
    validate = t.val_every > 0
    progress = build_progress_bar(cfg)
    plugins = [RunCheckpointIO()]
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=t.slurm_requeue))
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=build_strategy(cfg),
        precision=t.precision,
        gradient_clip_val=t.gradient_clip_val or None,
        accumulate_grad_batches=t.accumulate_grad_batches,
        max_steps=t.max_steps,
        max_epochs=-1,
        val_check_interval=t.val_every * t.accumulate_grad_batches if validate else None,
        check_val_every_n_epoch=None,
        limit_val_batches=None if validate else 0,
        num_sanity_val_steps=t.sanity_val_steps if validate else 0,
        log_every_n_steps=t.log_every,
        enable_progress_bar=t.progress_bar,
        enable_model_summary=True,
        enable_autolog_hparams=False,  # the run logs its merged config itself, once a resume has succeeded
        logger=logger,
        callbacks=[
            checkpoints, *([best_checkpoint] if best and validate else []), FinalCheckpoint(), ValidationRecord(),
            *([LearningRateMonitor(logging_interval="step")] if logger else []),
            *callbacks,
            *([progress] if progress else []),
        ],
        default_root_dir=run_dir,
        use_distributed_sampler=False,
        plugins=plugins,
    )
