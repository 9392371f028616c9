"""Optimisers and the learning-rate schedule.

Each branch and the alignment have their own optimiser (`<part>.optimizer`: AdamW or LAMB) and learning
rates; `BranchOptimizers` steps them as the one optimiser Lightning expects, under one schedule (warm-up,
then cosine or constant), so a branch is optimised as it would be alone.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterable

import torch
from torch import nn

from mirror.config.schema import MirrorConfig, OptimizerConfig, OptimizerKind, Schedule
from mirror.errors import missing_extra
from mirror.models.protocol import param_groups

PARTS = ("understanding", "execution", "align")


def _decay_split(name: str, params: Iterable[nn.Parameter], lr: float, spec: OptimizerConfig,
                 exempt: set[int]) -> list[dict]:
    """Matrices decay; biases, norm gains, other vectors and the model's exempt parameters do not, unless the
    optimiser decays every tensor (`decay_all`)."""
    weight_decay = spec.weight_decay
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if spec.decay_all or (p.ndim >= 2 and id(p) not in exempt)]
    rest = [p for p in params if not spec.decay_all and (p.ndim < 2 or id(p) in exempt)]
    groups = [
        {"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay},
        {"name": f"{name}/no_decay", "params": rest, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _exempt(model: nn.Module) -> set[int]:
    """The parameters a model lists in `no_weight_decay()` (names), by identity."""
    names = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    return {id(p) for n, p in model.named_parameters() if n in names}


def build_param_groups(branches: dict[str, nn.Module | None], align: nn.Module | None,
                       cfg: MirrorConfig, global_batch: int) -> list[dict]:
    """One group per branch part, at the branch's lr times the part's scale; alignment at `align.lr`. Group
    names start with the part ('understanding/', 'execution/', 'align') whose optimiser steps them."""
    groups = []
    for kind, model in branches.items():
        if model is None:
            continue
        branch = getattr(cfg, kind)
        lr = branch.lr * (global_batch if branch.lr_per_sample else 1)
        exempt = _exempt(model)
        for part in param_groups(model):
            groups += _decay_split(f"{kind}/{part.name}", part.params, lr * part.lr_scale, branch.optimizer, exempt)
    if align is not None:
        groups += _decay_split("align", align.parameters(), cfg.align.lr, cfg.align.optimizer, set())
    return groups


def lr_factor(cfg: MirrorConfig) -> Callable[[int], float]:
    """Linear warm-up to 1, then cosine to `min_lr_ratio` at `max_steps` (or constant)."""
    warmup, total, floor = cfg.optim.warmup_steps, cfg.trainer.max_steps, cfg.optim.min_lr_ratio
    cosine = cfg.optim.schedule == Schedule.cosine

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def make_optimizer(groups: list[dict], spec: OptimizerConfig) -> torch.optim.Optimizer:
    betas = tuple(spec.betas)
    if spec.name == OptimizerKind.lamb:
        return bitsandbytes_lamb()(groups, betas=betas, eps=spec.eps, optim_bits=32, max_unorm=1.0)
    if spec.name == OptimizerKind.lamb_timm:
        from timm.optim import Lamb  # timm is slow to import; only runs that use it pay for it

        # Clipping is the trainer's job (trainer.gradient_clip_val), not a hidden default of the optimiser.
        return Lamb(groups, betas=betas, eps=spec.eps, max_grad_norm=None)
    # The fused kernel runs on CPU and GPU and is several times faster than the per-tensor loop.
    return torch.optim.AdamW(groups, betas=betas, eps=spec.eps, fused=True)


def bitsandbytes_lamb() -> type[torch.optim.Optimizer]:
    """bitsandbytes' LAMB class (ARP's optimiser): Adam steps capped per tensor at ||p|| (a tensor at 0 stays
    at 0), decoupled weight decay. Imported on first use without its CPU backend's lookup of an optional 4-bit
    kernel on the Hugging Face hub (LAMB uses none): `kernels` is withheld while bitsandbytes loads."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    withheld = "kernels" not in sys.modules
    if withheld:
        sys.modules["kernels"] = None  # `from kernels import get_kernel` raises ImportError: no hub lookup
    try:
        import bitsandbytes
    except ModuleNotFoundError:
        raise missing_extra("bitsandbytes", "arp", "The optimizer 'lamb'") from None
    finally:
        if withheld:
            del sys.modules["kernels"]
    return bitsandbytes.optim.LAMB


def build_optimizer(groups: list[dict], cfg: MirrorConfig) -> BranchOptimizers:
    """Each part's groups under that part's optimiser, stepped together."""
    by_part = {part: [g for g in groups if g["name"].split("/")[0] == part] for part in PARTS}
    return BranchOptimizers([make_optimizer(g, getattr(cfg, part).optimizer) for part, g in by_part.items() if g])


class BranchOptimizers(torch.optim.Optimizer):
    """Several optimisers stepped as one. `param_groups` are the inner optimisers' own group dicts, so one LR
    scheduler, gradient clipping and AMP unscaling reach every group; `state` is one dict shared with them, so
    a checkpoint saves and restores every optimiser's state."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers
        super().__init__([g for o in optimizers for g in o.param_groups], {})
        self._share()

    def _share(self) -> None:
        start = 0
        for optimizer in self.optimizers:
            count = len(optimizer.param_groups)
            optimizer.param_groups = self.param_groups[start : start + count]
            optimizer.state = self.state
            start += count

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)  # replaces the group dicts and the state: share the new ones
        self._share()
