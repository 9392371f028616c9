"""The execution model as rollout workers receive it: config, data spec and weights packed as bytes, read
back with `weights_only` (no code can travel in a payload)."""

from __future__ import annotations

import io
from dataclasses import asdict

import torch

from mirror.config import MirrorConfig, config_from_dict, to_dict
from mirror.models.protocol import DataSpec


def pack(cfg: MirrorConfig, spec: DataSpec, execution: torch.nn.Module) -> bytes:
    state = {k: v.detach().cpu() for k, v in execution.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"config": to_dict(cfg), "spec": asdict(spec), "state": state}, buffer)
    return buffer.getvalue()


def unpack(payload: bytes) -> tuple[MirrorConfig, DataSpec, dict[str, torch.Tensor]]:
    data = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    return config_from_dict(data["config"]), DataSpec(**data["spec"]), data["state"]


def build(payload: bytes) -> tuple[MirrorConfig, torch.nn.Module]:
    """The config and the execution model with the packed weights, in eval mode on the CPU."""
    from mirror.registry import build_branch

    cfg, spec, state = unpack(payload)
    model = build_branch("execution", cfg.execution, spec)
    model.load_state_dict(state)
    return cfg, model.eval()
