"""MirrorModule: U and E trained jointly, their features aligned: L = L_AU + l_EE L_EE + l_align L_align."""

from __future__ import annotations

from dataclasses import asdict
from fractions import Fraction
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from mirror.align import MirrorAlignment, recall_at_k, recall_chance
from mirror.config import MirrorConfig, config_from_dict, to_dict
from mirror.config.loader import NO_MODEL
from mirror.errors import ConfigError, MirrorError
from mirror.models.protocol import BranchOutput, DataSpec
from mirror.registry import build_branch
from mirror.training import rng
from mirror.training.optim import build_optimizer, build_param_groups, lr_factor

UNDERSTANDING, EXECUTION = 0, 1  # keys of the branches' random streams


class NonFiniteLossError(MirrorError):
    """The loss became NaN or Inf; the run stops before the bad step changes any weight."""


class MirrorModule(L.LightningModule):
    """Joins any U and E that follow `mirror.models.protocol` through MirrorAlignment (paper Eq. 5).

    A branch is built only if something trains it: its own loss weight or the alignment. U's task loss
    trains on `understanding.fraction` of the steps, evenly spaced and decided from `global_step`, so
    every rank agrees; alignment (when its weight is > 0) trains on every step.
    """

    def __init__(self, config: MirrorConfig | dict, spec: DataSpec | dict):
        super().__init__()
        cfg = config if isinstance(config, MirrorConfig) else config_from_dict(config)
        spec = spec if isinstance(spec, DataSpec) else DataSpec(**spec)
        self.cfg, self.spec = cfg, spec
        # the constructor's own arguments as plain data: load_from_checkpoint rebuilds the module from them
        self.save_hyperparameters({"config": to_dict(cfg), "spec": asdict(spec)}, logger=False)
        align_on = cfg.align.weight > 0
        need_u = cfg.understanding.name != NO_MODEL and (cfg.understanding.weight > 0 or align_on)
        need_e = cfg.execution.name != NO_MODEL and (cfg.execution.weight > 0 or align_on)
        if not (need_u or need_e):
            raise ConfigError("nothing to train: understanding.weight, execution.weight and align.weight are all 0")
        # Each branch starts from, and later draws from, its own stream: with the alignment off, E's
        # initialisation, dropout and augmentation are the same whether or not U trains beside it.
        with rng.stream(rng.derive(cfg.seed, 0, UNDERSTANDING)):
            self.understanding = build_branch("understanding", cfg.understanding, spec) if need_u else None
        with rng.stream(rng.derive(cfg.seed, 0, EXECUTION)):
            self.execution = build_branch("execution", cfg.execution, spec) if need_e else None
        self.alignment = (
            MirrorAlignment(self.understanding.feature_dim, self.execution.feature_dim, cfg.align.dim, cfg.align.tau)
            if align_on
            else None
        )
        self._fraction = Fraction(cfg.understanding.fraction).limit_denominator(1000)
        self._rng_to_restore: dict[str, Tensor] | None = None
        self._rng_before_val: dict[str, Tensor] | None = None
        self._val_z: list[tuple[Tensor, Tensor, Tensor]] = []

    def understanding_trains(self, step: int) -> bool:
        """True on `fraction` of the steps, evenly spaced, step 0 included."""
        f = self._fraction
        return (step * f.numerator) // f.denominator != ((step - 1) * f.numerator) // f.denominator

    def align_weight(self, step: int | None) -> float:
        """lambda_align, ramped up linearly over `align.warmup_steps` (models trained from scratch need
        features worth aligning first; the paper starts from pretrained ones). `None`: evaluation."""
        warmup = self.cfg.align.warmup_steps
        ramp = 1.0 if step is None or warmup == 0 else min(1.0, step / warmup)
        return self.cfg.align.weight * ramp

    def _stream(self, branch: int, step: int, micro: int):
        """The branch's random stream at one (micro-)batch of one rank: a function of where training is, so
        resumed runs draw the same numbers."""
        return rng.stream(rng.derive(self.cfg.seed, 1, branch, step, micro, self.global_rank))

    def _run(self, batch: dict, u_task: bool, e_task: bool, distributed: bool, step: int | None = None,
             micro: int = 0):
        """Forward both branches and the alignment; returns weighted loss terms, metrics, aligned features."""
        cfg, align_on = self.cfg, self.alignment is not None
        at = self.global_step if step is None else step
        out_u: BranchOutput | None = None
        out_e: BranchOutput | None = None
        if self.understanding is not None and (u_task or align_on):
            with self._stream(UNDERSTANDING, at, micro):
                out_u = self.understanding(batch["understanding"], task=u_task)
        if self.execution is not None and (e_task or align_on):
            with self._stream(EXECUTION, at, micro):
                out_e = self.execution(batch["execution"], task=e_task)
        terms: dict[str, tuple[float, Tensor]] = {}
        metrics: dict[str, Tensor] = {}
        if u_task:
            terms["au"] = (cfg.understanding.weight, out_u.loss)
            metrics.update({f"u/{k}": v for k, v in out_u.metrics.items()})
        if e_task:
            terms["ee"] = (cfg.execution.weight, out_e.loss)
            metrics.update({f"e/{k}": v for k, v in out_e.metrics.items()})
        aligned = None
        if align_on:
            keys = batch["keys"][cfg.align.positives.value]
            pairs = len(keys)  # execution may carry extra unpaired rows after the pairs, for its own loss
            aligned = self.alignment(out_u.feature[:pairs], out_e.feature[:pairs], keys, distributed)
            terms["align"] = (self.align_weight(step), aligned.loss)
            metrics.update({"align/hit_ue": aligned.hit_ue, "align/hit_eu": aligned.hit_eu})
        return terms, metrics, aligned

    def training_loss(self, batch: dict, step: int, micro: int = 0) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The weighted loss of one training step (micro-batch `micro` of it under gradient accumulation) and
        the values to log (None when nothing trains)."""
        u_task = self.understanding is not None and self.cfg.understanding.weight > 0
        u_task = u_task and self.understanding_trains(step)
        e_task = self.cfg.execution.weight > 0
        terms, metrics, _ = self._run(batch, u_task, e_task, distributed=True, step=step, micro=micro)
        if not terms:
            return None, {}
        loss = sum(w * term for w, term in terms.values())
        logs = {"train/loss": loss, **{f"train/loss_{k}": v for k, (_, v) in terms.items()}}
        logs.update({f"train/{k}": v for k, v in metrics.items()})
        return loss, logs

    def training_step(self, batch: dict, batch_idx: int) -> Tensor | None:
        loss, logs = self.training_loss(batch, self.global_step, batch_idx % self.trainer.accumulate_grad_batches)
        if loss is None:
            return None
        finite = bool(torch.isfinite(loss.detach()))
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            parts = ", ".join(f"{k[len('train/loss_'):]}={v.item():.4g}" for k, v in logs.items() if "loss_" in k)
            raise NonFiniteLossError(
                f"loss is {loss.item()} at step {self.global_step} ({parts}); stopped before that step"
            )
        self._log_step(logs, batch_idx)
        shown = {"loss": loss, **{k.removeprefix("train/"): v for k, v in logs.items() if "loss_" in k}}
        self.log_dict(shown, prog_bar=True, logger=False, batch_size=self.cfg.data.batch_size)
        return loss

    def _log_step(self, logs: dict[str, Tensor], batch_idx: int) -> None:
        """Write this step's values straight to the loggers every `log_every` steps.

        `self.log` would repeat a key's last value on steps that do not log it (U's loss on the steps
        where understanding does not train), which draws false curves.
        """
        trainer = self.trainer
        last_micro_batch = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        if not last_micro_batch or self.global_step % self.cfg.trainer.log_every:
            return
        scalars = {k: float(v.detach()) for k, v in logs.items()}
        for logger in self.loggers:
            logger.log_metrics(scalars, step=self.global_step)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        u_task = self.understanding is not None and self.cfg.understanding.weight > 0
        e_task = self.execution is not None and self.cfg.execution.weight > 0
        terms, metrics, aligned = self._run(batch, u_task, e_task, distributed=False)
        size = len(next(iter(batch["keys"].values())))
        logs = {f"val/loss_{k}": v for k, (_, v) in terms.items()}
        logs.update({f"val/{k}": v for k, v in metrics.items()})
        self.log_dict(logs, on_epoch=True, sync_dist=True, batch_size=size)
        if aligned is not None:
            keys = batch["keys"][self.cfg.align.positives.value]
            self._val_z.append((aligned.z_u.detach(), aligned.z_e.detach(), keys))

    def on_validation_epoch_start(self) -> None:
        self._rng_before_val = rng.capture()  # validation must not shift the training run's random stream
        self._val_z = []

    def on_validation_epoch_end(self) -> None:
        if self._val_z:
            z_u, z_e, keys = (torch.cat(parts) for parts in zip(*self._val_z, strict=True))
            if self.trainer.world_size > 1:
                z_u, z_e, keys = (x.flatten(0, 1) for x in self.all_gather((z_u, z_e, keys)))
            self.log_dict(
                {
                    "val/align/recall1": recall_at_k(z_u, z_e, keys, 1),
                    "val/align/recall1_chance": recall_chance(keys, 1),
                },
                rank_zero_only=True,
            )
        self._val_z = []
        rng.restore(self._rng_before_val)

    def configure_optimizers(self) -> dict:
        trainer = self.trainer
        global_batch = self.cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
        branches = {"understanding": self.understanding, "execution": self.execution}
        # each branch and the alignment with their own optimiser, stepped as one under one schedule
        optimizer = build_optimizer(build_param_groups(branches, self.alignment, self.cfg, global_batch), self.cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(self.cfg))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = {k: v.to(self.device) for k, v in rng.capture().items()}
        if self.trainer.world_size > 1:
            state = self.all_gather(state)  # every rank saves; rank 0 writes all ranks' generators
        else:
            state = {k: v[None] for k, v in state.items()}
        checkpoint["rng"] = {k: v.cpu() for k, v in state.items()}

    @classmethod
    def load_from_checkpoint(cls, *args: Any, **kwargs: Any) -> MirrorModule:
        """Lightning's loader, giving the module in evaluation mode as `mirror.load` does (`.train()` to train)."""
        return super().load_from_checkpoint(*args, **kwargs).eval()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("rng")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Restored here, not at load time: building loaders in between draws from the generator.
        states, self._rng_to_restore = self._rng_to_restore, None
        if states is None:
            return
        if states["cpu"].shape[0] != self.trainer.world_size:
            rank_zero_warn("resumed with a different number of processes: random streams start afresh")
            return
        rng.restore({k: v[self.global_rank] for k, v in states.items()})
