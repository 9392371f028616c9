"""Random-generator state of one process, saved in checkpoints so that a resumed run draws the same numbers."""

from __future__ import annotations

import torch
from torch import Tensor


def capture() -> dict[str, Tensor]:
    """Torch's CPU generator and, when present, the current CUDA device's generator (uint8 tensors)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore(state: dict[str, Tensor]) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())
