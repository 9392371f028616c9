"""Trained models from Python: `mirror.load(checkpoint)` gives a run's branches without building its data (the
config and the data's instructions and tasks are inside the checkpoint).

    trained = mirror.load("runs/metaworld-mirror/checkpoints/last.ckpt")
    action = trained.policy.act(observation, "open the drawer on the left")   # E: the next action
    index = trained.understanding.recognise(clip, ["open the drawer on the left", ...])  # U: which one (an int)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mirror.config import MirrorConfig
from mirror.models.protocol import DataSpec, Policy


@dataclass
class Trained:
    """A trained run: its config, the data's instructions and tasks, the module, and each branch (None when the
    run did not train it)."""

    config: MirrorConfig
    spec: DataSpec
    module: torch.nn.Module

    @property
    def understanding(self) -> torch.nn.Module | None:
        return self.module.understanding

    @property
    def execution(self) -> torch.nn.Module | None:
        return self.module.execution

    @property
    def policy(self) -> Policy | None:
        return Policy(self.module.execution) if self.module.execution is not None else None


def load(checkpoint: str | Path, device: str | torch.device = "cpu") -> Trained:
    """A `mirror train` checkpoint's models, in evaluation mode, read safely (`weights_only`)."""
    from mirror.training.checkpoint import read_checkpoint, restore_module

    module = restore_module(read_checkpoint(checkpoint), checkpoint)
    return Trained(module.cfg, module.spec, module.to(device).eval())
