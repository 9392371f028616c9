"""Feature extraction over a data loader: u and e of paired rows (and their images in Z), with progress."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from mirror.training.module import MirrorModule


def move(batch, device: torch.device):
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move(v, device) for k, v in batch.items()}
    return batch


@torch.no_grad()
def extract(module: MirrorModule, loader: DataLoader, desc: str = "features") -> dict[str, Tensor]:
    """u, e, their projections z_u, z_e (when the module has an alignment) and the keys, on the CPU."""
    module.eval()
    device = next(module.parameters()).device
    parts: dict[str, list[Tensor]] = {}
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False):
        batch = move(batch, device)
        out = {"u": module.understanding(batch["understanding"], task=False).feature,
               "e": module.execution(batch["execution"], task=False).feature}
        if module.alignment is not None:
            out["z_u"], out["z_e"] = module.alignment.project(out["u"], out["e"])
        out.update({f"key_{k}": v for k, v in batch["keys"].items()})
        for k, v in out.items():
            parts.setdefault(k, []).append(v.float().cpu() if v.is_floating_point() else v.cpu())
    return {k: torch.cat(v) for k, v in parts.items()}
