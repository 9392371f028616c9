"""Toy U, E and data that follow the mirror protocol, small enough for CPU tests and the benchmark.

Each instruction has a prototype vector; clips and observations are noisy copies of it, so the
understanding task (which instruction?) and the execution task (which action?) are learnable and
the two branches' features can align.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, default_collate

from mirror.config import DataConfig, ExecutionConfig, UnderstandingConfig
from mirror.data.module import MirrorDataModule
from mirror.data.sampling import Draw
from mirror.models.protocol import BranchOutput, DataSpec, ParamGroup


@dataclass
class ToyDataConfig(DataConfig):
    size: int = 256
    val_size: int = 64
    instructions: int = 8
    dim: int = 16
    frames: int = 4
    noise: float = 0.5
    step_delay: float = 0.0  # seconds added to every training batch (tests that stop a run midway)


class ToyPairs(Dataset):
    """Item i: instruction i % K, episode i // 2, task = instruction % 2; its partner clip is drawn
    from another item of the same instruction when fetched with a `Draw` (pairing by instruction)."""

    def __init__(self, cfg: ToyDataConfig, size: int, offset: int):
        self.cfg, self.size, self.offset = cfg, size, offset
        gen = np.random.default_rng(1234)
        self.proto = gen.standard_normal((cfg.instructions, cfg.dim)).astype(np.float32)

    def __len__(self) -> int:
        return self.size

    def _noisy(self, instr: int, seed: tuple, shape: tuple) -> torch.Tensor:
        noise = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        return torch.from_numpy(self.proto[instr] + self.cfg.noise * noise)

    def __getitem__(self, key: Draw | int) -> dict:
        index, seed = (key.index, key.seed) if isinstance(key, Draw) else (key, (0, 0, key))
        i = index + self.offset
        instr = i % self.cfg.instructions
        partner = i
        if isinstance(key, Draw):
            same = np.arange(instr, self.size, self.cfg.instructions) + self.offset
            partner = int(np.random.default_rng(seed).choice(same))
        return {
            "understanding": {
                "clip": self._noisy(instr, (partner, 1), (self.cfg.frames, self.cfg.dim)),
                "label": instr,
            },
            "execution": {"obs": self._noisy(instr, (i, 2), (self.cfg.dim,)), "action": instr % 4},
            "keys": {"episode": i // 2, "instruction": instr, "task": instr % 2},
        }


def slow_collate(items: list, delay: float):
    time.sleep(delay)
    return default_collate(items)


class ToyData(MirrorDataModule):
    config_class = ToyDataConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        if cfg.data.step_delay > 0:
            self.collate = functools.partial(slow_collate, delay=cfg.data.step_delay)

    @property
    def spec(self) -> DataSpec:
        k = self.cfg.data.instructions
        return DataSpec(instructions=[f"instruction {i}" for i in range(k)], tasks=["even", "odd"])

    def train_set(self) -> Dataset:
        return ToyPairs(self.cfg.data, self.cfg.data.size, 0)

    def val_set(self) -> Dataset:
        return ToyPairs(self.cfg.data, self.cfg.data.val_size, self.cfg.data.size)


def mlp(dim_in: int, width: int, depth: int, dropout: float = 0.0) -> nn.Sequential:
    layers, d = [], dim_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.GELU(), nn.Dropout(dropout)]
        d = width
    return nn.Sequential(*layers)


@dataclass
class ToyUnderstandingConfig(UnderstandingConfig):
    width: int = 32
    depth: int = 2
    text_lr_scale: float = 0.05


class ToyUnderstanding(nn.Module):
    """Recognises the instruction of a clip CLIP-style: pooled frames vs. an embedding per instruction."""

    config_class = ToyUnderstandingConfig

    def __init__(self, cfg: ToyUnderstandingConfig, spec: DataSpec):
        super().__init__()
        self.cfg = cfg
        self.video = mlp(16, cfg.width, cfg.depth)
        self.text = nn.Embedding(len(spec.instructions), cfg.width)
        self.feature_dim = cfg.width

    def param_groups(self) -> list[ParamGroup]:
        return [
            ParamGroup("video", list(self.video.parameters()), 1.0),
            ParamGroup("text", list(self.text.parameters()), self.cfg.text_lr_scale),
        ]

    def forward(self, inputs: dict, task: bool) -> BranchOutput:
        feature = self.video(inputs["clip"]).mean(dim=1)
        if not task:
            return BranchOutput(feature)
        logits = F.normalize(feature, dim=-1) @ F.normalize(self.text.weight, dim=-1).T / 0.1
        acc = (logits.argmax(1) == inputs["label"]).float().mean()
        return BranchOutput(feature, F.cross_entropy(logits, inputs["label"]), {"acc": acc})


@dataclass
class ToyExecutionConfig(ExecutionConfig):
    width: int = 32
    depth: int = 2
    dropout: float = 0.1
    nan_after: int = -1  # make the loss NaN after this many training forwards (tests the NaN stop)


class ToyExecution(nn.Module):
    """Predicts one of 4 actions from an observation; its last hidden layer is the feature e."""

    config_class = ToyExecutionConfig

    def __init__(self, cfg: ToyExecutionConfig, spec: DataSpec):
        super().__init__()
        self.cfg = cfg
        self.body = mlp(16, cfg.width, cfg.depth, cfg.dropout)
        self.head = nn.Linear(cfg.width, 4)
        self.feature_dim = cfg.width
        self.calls = 0

    def forward(self, inputs: dict, task: bool) -> BranchOutput:
        feature = self.body(inputs["obs"])
        if not task:
            return BranchOutput(feature)
        logits = self.head(feature)
        loss = F.cross_entropy(logits, inputs["action"])
        if self.training:
            self.calls += 1
            if 0 <= self.cfg.nan_after < self.calls:
                loss = loss * float("nan")
        acc = (logits.argmax(1) == inputs["action"]).float().mean()
        return BranchOutput(feature, loss, {"acc": acc})
