"""Training progress a person can follow: Lightning's rich bar on a terminal, counting optimiser steps out of
`trainer.max_steps`; plain lines where stdout is a file or a pipe (SLURM logs, `> train.log`), one every
`trainer.log_every` steps (step, losses, steps/s, ETA) and one per validation, as Lightning's bars show them."""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress import ProgressBar

from mirror.config import MirrorConfig


def build_progress_bar(cfg: MirrorConfig) -> ProgressBar | None:
    """The progress display of a training run, or None when `trainer.progress_bar` is off."""
    if not cfg.trainer.progress_bar:
        return None
    if sys.stdout.isatty() and importlib.util.find_spec("rich") is not None:
        return StepBar()
    return LogLines(every=cfg.trainer.log_every)


class StepBar(RichProgressBar):
    """Lightning's rich bar counting optimiser steps out of `trainer.max_steps` (its own counts batches of an
    epoch and, with training bounded by steps, reads "Epoch 0/-2")."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.max_steps

    def _get_train_description(self, current_epoch: int) -> str:
        return f"{'Step':{len(self.validation_description)}}"

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        super().on_train_batch_end(trainer, module, outputs, batch, trainer.global_step - 1)


def _number(value: Any) -> str:
    return f"{float(value):.4g}"


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class LogLines(ProgressBar):
    """Plain progress lines on stdout (rank 0): one every `every` optimiser steps, one per validation."""

    def __init__(self, every: int):
        super().__init__()
        self.every = max(1, every)
        self._enabled = True
        self._started = self._mark = 0.0
        self._mark_step = self._last_step = 0
        self._validating_since: float | None = None
        self._paused = 0.0  # validation time since the last line, left out of steps/s

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._started = self._mark = time.monotonic()
        self._mark_step = self._last_step = trainer.global_step
        if self._enabled:
            print(f"training: step {trainer.global_step} of {trainer.max_steps}, a line every {self.every} steps",
                  flush=True)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step or (step % self.every and step != trainer.max_steps):
            return
        self._last_step = step
        now = time.monotonic()
        busy = now - self._mark - self._paused
        rate = (step - self._mark_step) / busy if busy > 0 else 0.0
        self._mark, self._mark_step, self._paused = now, step, 0.0
        if not self._enabled:
            return
        metrics = self.get_metrics(trainer, module)
        metrics.pop("v_num", None)
        losses = " ".join(f"{k} {_number(v)}" for k, v in metrics.items())
        eta = _duration((trainer.max_steps - step) / rate) if rate > 0 else "?"
        print(f"step {step}/{trainer.max_steps} | {losses} | {rate:.3g} steps/s | elapsed "
              f"{_duration(now - self._started)} | ETA {eta}", flush=True)

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._validating_since = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        took = time.monotonic() - self._validating_since
        if trainer.sanity_checking:
            return
        self._paused += took
        if not self._enabled:
            return
        bar = trainer.progress_bar_metrics
        shown = {k: v for k, v in trainer.callback_metrics.items() if k not in bar and not k.startswith(("lr-", "lr/"))}
        spec = getattr(getattr(trainer, "datamodule", None), "spec", None)
        tasks = set(spec.tasks) if spec is not None else set()
        success = {k.rsplit("/", 1)[1]: v for k, v in sorted(shown.items()) if k.startswith("rollout/success/")}
        overall = {k: v for k, v in shown.items() if k.rsplit("/", 1)[-1] not in tasks  # per task: CSV and W&B
                   and not (k.startswith("rollout/errors_by_kind/") and float(v) == 0)}
        values = " | ".join(f"{k} {_number(v)}" for k, v in sorted(overall.items()))
        print(f"validation at step {trainer.global_step} ({took:.1f} s) | {values}", flush=True)
        if len(success) > 1:
            print("  rollout success per task (%): " + ", ".join(f"{t} {float(v):.0f}" for t, v in success.items()),
                  flush=True)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._enabled:
            print(f"training: reached step {trainer.global_step} in {_duration(time.monotonic() - self._started)}",
                  flush=True)
