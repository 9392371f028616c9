"""Random streams: the process's generator state (saved in checkpoints so that a resumed run draws the same
numbers) and the per-branch streams that keep one branch's draws independent of the other branch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
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


def derive(*keys: int) -> int:
    """A 63-bit seed from non-negative integer keys (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextmanager
def stream(seed: int) -> Iterator[None]:
    """Run a block on its own stream seeded by `seed` (CPU and the current CUDA device); the outer stream is
    restored afterwards, untouched by the block."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
