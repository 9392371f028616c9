"""The small contract between MirrorModule and any understanding model U or execution model E.

A branch is an `nn.Module` with:
- `config_class`: its config dataclass (subclass of `UnderstandingConfig` or `ExecutionConfig`);
- `__init__(cfg, spec: DataSpec)`: built from its config section and the data's instruction/task lists;
- `feature_dim: int`: the width of the feature it offers for alignment (u for U, e for E);
- `forward(inputs, task: bool) -> BranchOutput`: always the feature; with `task`, also its task loss and
  metrics (U skips its task loss on the steps where understanding does not train);
- optionally `param_groups() -> list[ParamGroup]` for learning rates relative to the branch's `lr`, and
  `no_weight_decay() -> set[str]`, names of matrices its optimiser must not decay (embeddings).

A batch from a data module is a dict: `understanding` and `execution` (each branch's inputs, row i of one
paired with row i of the other) and `keys`, a dict of int tensors `episode`, `instruction` and `task`
(indices into `DataSpec`) of the pairs, from which the alignment picks its positives. `execution` may
carry more rows than there are pairs (after them): they train only its task loss, which lets a cheap
execution model see more data per step than an expensive understanding model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from torch import Tensor, nn

from mirror.errors import MirrorError


@dataclass
class DataSpec:
    """What models may know of the data: instruction texts and task names, indexed by the batch keys, and a
    held-out paraphrase of each instruction where the data has them (for recognition, never for training)."""

    instructions: list[str]
    tasks: list[str]
    paraphrases: list[str] = field(default_factory=list)


@dataclass
class BranchOutput:
    feature: Tensor  # (B, feature_dim)
    loss: Tensor | None = None  # the branch's task loss, when asked for
    metrics: dict[str, Tensor] = field(default_factory=dict)


class ParamGroup(NamedTuple):
    name: str
    params: list[nn.Parameter]
    lr_scale: float  # multiplies the branch's lr (e.g. ViCLIP's text tower at 0.05)


@runtime_checkable
class Branch(Protocol):
    feature_dim: int

    def __call__(self, inputs: Any, task: bool) -> BranchOutput: ...


def param_groups(model: nn.Module) -> list[ParamGroup]:
    """The model's own groups when it defines them, else one group of all trainable parameters."""
    if hasattr(model, "param_groups"):
        return model.param_groups()
    return [ParamGroup("all", [p for p in model.parameters() if p.requires_grad], 1.0)]


class Policy:
    """The execution model acting in an environment, one observation at a time: `act(observation, instruction)`
    returns the model's action and keeps its memory across the steps of an episode; `reset()` starts another.
    What an observation holds is the model's own (`step` of the model: ARP takes `rgb`, `xyz`, `proprio`;
    the BabyAI agent a minigrid observation)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.state: Any = None

    def reset(self) -> None:
        self.state = None

    def act(self, observation: dict, instruction: str) -> Any:
        if isinstance(observation, tuple):
            raise MirrorError("act: give the observation itself; gymnasium's reset() returns (observation, info) "
                              "and step() (observation, reward, terminated, truncated, info)")
        if not isinstance(instruction, str):
            raise MirrorError(f"act: the instruction is one string; got {type(instruction).__name__}")
        action, self.state = self.model.step(observation, instruction, self.state)
        return action
