"""The typed schema of a run: built-in defaults that an experiment file and the command line override.

Model and data sections are open: each registered class names its own config dataclass, a subclass of
`UnderstandingConfig`, `ExecutionConfig` or `DataConfig`, and the loader validates against that class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from omegaconf import MISSING


class Positives(str, Enum):
    """Which samples count as the same action for alignment (paper Table 3)."""

    episode = "episode"
    instruction = "instruction"
    task = "task"


class LoggerKind(str, Enum):
    wandb = "wandb"
    csv = "csv"
    none = "none"


class WandbMode(str, Enum):
    auto = "auto"  # online when an API key is configured, offline otherwise
    online = "online"
    offline = "offline"


class OptimizerKind(str, Enum):
    adamw = "adamw"  # torch's AdamW
    lamb = "lamb"  # bitsandbytes' 32-bit LAMB, as ARP trains
    lamb_timm = "lamb_timm"  # timm's LAMB (trust ratio on decayed groups only)


class Schedule(str, Enum):
    cosine = "cosine"
    constant = "constant"


@dataclass
class OptimizerConfig:
    """The optimiser of one part of the model (each branch and the alignment name their own); matrices decay,
    biases, norms, embeddings the model lists as exempt (`no_weight_decay`) and scalars do not, unless
    `decay_all` (ARP decays every tensor)."""

    name: OptimizerKind = OptimizerKind.adamw
    weight_decay: float = 0.01
    decay_all: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class BranchConfig:
    """Keys every model branch has; a model's own config subclasses this with its architecture keys."""

    name: str = MISSING
    weight: float = 1.0  # lambda of the branch's task loss; 0 trains the branch only through alignment
    lr: float = 1e-4
    lr_per_sample: bool = False  # lr is per sample and multiplied by the global batch size (ARP's rule)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class UnderstandingConfig(BranchConfig):
    fraction: float = 0.2  # share of optimiser steps on which the understanding task loss trains


@dataclass
class ExecutionConfig(BranchConfig):
    pass


@dataclass
class DataConfig:
    """Keys every data module has; a data module's own config subclasses this."""

    name: str = MISSING
    batch_size: int = 32  # per device
    val_batch_size: int = 64
    num_workers: int = 0


@dataclass
class AlignConfig:
    dim: int = 1024  # width of the shared space Z
    tau: float = 0.1
    positives: Positives = Positives.instruction
    weight: float = 0.5  # lambda_align; 0 is the separate-training baseline
    warmup_steps: int = 0  # lambda_align ramps up linearly from 0 over these steps
    lr: float = 1e-4
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class OptimConfig:
    """The one learning-rate schedule every optimiser follows (each at its own peak lr)."""

    warmup_steps: int = 0
    schedule: Schedule = Schedule.cosine
    min_lr_ratio: float = 0.01  # the cosine ends at lr * min_lr_ratio


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: int = 1  # per node; -1 for all visible
    num_nodes: int = 1
    strategy: str = "auto"  # auto: DDP whenever more than one process trains
    find_unused_parameters: bool | None = None  # None: decided from the config (skipped branches)
    ddp_timeout_min: int = 120  # above the longest rollout evaluation, which other ranks wait for
    precision: str = "32-true"
    gradient_clip_val: float = 0.0
    accumulate_grad_batches: int = 1
    max_steps: int = 1000
    val_every: int = 0  # optimiser steps between validations; 0: never
    ckpt_every: int = 500  # optimiser steps between checkpoints; one more at the end
    log_every: int = 10
    sanity_val_steps: int = 1
    progress_bar: bool = True
    slurm_requeue: bool = True
    threads: int | None = None  # torch threads per training process; null: on CPUs, its share of the cores



@dataclass
class WandbConfig:
    project: str = "mirror"
    entity: str | None = None
    mode: WandbMode = WandbMode.auto
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None


@dataclass
class RunConfig:
    name: str = MISSING  # defaults to the experiment file's folder and name, e.g. babyai-mirror
    root: str = "runs"


@dataclass
class MirrorConfig:
    seed: int = 0
    resume: str | None = None  # "auto" (the checkpoint of the run's latest step) or a checkpoint path
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    understanding: UnderstandingConfig = field(default_factory=UnderstandingConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerKind = LoggerKind.wandb
    wandb: WandbConfig = field(default_factory=WandbConfig)
