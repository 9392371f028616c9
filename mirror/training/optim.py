"""Optimiser and learning-rate schedule: per-branch learning rates, AdamW or LAMB, warm-up then cosine."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from timm.optim import Lamb
from torch import nn

from mirror.config.schema import MirrorConfig, OptimizerKind, Schedule
from mirror.models.protocol import param_groups


def _decay_split(name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float) -> list[dict]:
    """Matrices decay; biases, norm gains and other vectors do not (as in CLIP and ViT training)."""
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    rest = [p for p in params if p.ndim < 2]
    groups = [
        {"name": name, "params": decay, "lr": lr, "weight_decay": weight_decay},
        {"name": f"{name}/no_decay", "params": rest, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def build_param_groups(branches: dict[str, nn.Module | None], align: nn.Module | None,
                       cfg: MirrorConfig, global_batch: int) -> list[dict]:
    """One group per branch part, at the branch's lr times the part's scale; alignment at `align.lr`."""
    groups = []
    for kind, model in branches.items():
        if model is None:
            continue
        branch = getattr(cfg, kind)
        lr = branch.lr * (global_batch if branch.lr_per_sample else 1)
        for part in param_groups(model):
            groups += _decay_split(f"{kind}/{part.name}", part.params, lr * part.lr_scale, cfg.optim.weight_decay)
    if align is not None:
        groups += _decay_split("align", align.parameters(), cfg.align.lr, cfg.optim.weight_decay)
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


def build_optimizer(groups: list[dict], cfg: MirrorConfig) -> torch.optim.Optimizer:
    betas = tuple(cfg.optim.betas)
    if cfg.optim.name == OptimizerKind.lamb:
        # Clipping is the trainer's job (trainer.gradient_clip_val), not a hidden default of the optimiser.
        return Lamb(groups, betas=betas, eps=cfg.optim.eps, max_grad_norm=None)
    # The fused kernel runs on CPU and GPU and is several times faster than the per-tensor loop.
    return torch.optim.AdamW(groups, betas=betas, eps=cfg.optim.eps, fused=True)
