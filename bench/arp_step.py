"""ARP on CPU: renderer throughput (4 x 128 x 128 points -> 3 views of 224 x 224) and the training-step time
of a small and the full configuration, in one run; prints the renderer's share of a full step (two renders:
stage 1 and the zoomed stage 2)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.config import load_config  # noqa: E402
from mirror.models.execution.arp import ARP  # noqa: E402
from mirror.models.execution.renderer import render, to_cube  # noqa: E402
from mirror.models.protocol import DataSpec  # noqa: E402

SMALL = ["execution.image_size=112", "execution.mvt_channels=32", "execution.embed=64", "execution.mvt_width=128",
         "execution.mvt_depth=2", "execution.mvt_heads=4", "execution.policy_heads=4", "execution.policy_mlp=128",
         "execution.cross_layers=2", "execution.self_layers=2", "execution.upsample_width=32"]
BATCH = 2


def batch() -> dict:
    gen = torch.Generator().manual_seed(0)
    lo = torch.tensor([-0.3, -0.5, 0.6])
    return {
        "rgb": torch.randint(0, 255, (BATCH, 4, 128, 128, 3), dtype=torch.uint8, generator=gen),
        "xyz": torch.rand(BATCH, 4, 128, 128, 3, generator=gen) + lo,
        "proprio": torch.rand(BATCH, 3, generator=gen),
        "pose": torch.cat([torch.rand(BATCH, 3, generator=gen) * 0.6 + lo + 0.2,
                           torch.tensor([[0.0, 0.0, 0.0, 1.0]]).expand(BATCH, 4)], 1),
        "gripper_open": torch.ones(BATCH), "ignore_collisions": torch.zeros(BATCH),
        "instruction": torch.zeros(BATCH, dtype=torch.long),
    }


def renders_per_second(inputs: dict, repeats: int = 5) -> float:
    points = to_cube(inputs["xyz"].flatten(1, -2))
    colours = inputs["rgb"].flatten(1, -2).float() / 255
    render(points, colours)
    start = time.perf_counter()
    for _ in range(repeats):
        render(points, colours)
    return repeats * BATCH / (time.perf_counter() - start)


def step_seconds(overrides: list[str], inputs: dict, repeats: int) -> tuple[float, float]:
    cfg = load_config(ROOT / "configs/rlbench/arp.yaml", overrides + ["execution.clip_checkpoint=null"]).execution
    model = ARP(cfg, DataSpec(["open the top drawer"], ["open_drawer"])).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step():
        out = model(inputs, task=True)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats, sum(p.numel() for p in model.parameters()) / 1e6


def main() -> None:
    torch.manual_seed(0)
    inputs = batch()
    rate = renders_per_second(inputs)
    small, small_params = step_seconds(SMALL, inputs, 3)
    full, full_params = step_seconds([], inputs, 2)
    share = 2 * BATCH / rate / full
    print(json.dumps({
        "bench": "arp_step", "device": "cpu", "batch": BATCH, "threads": torch.get_num_threads(),
        "render_samples_per_s": round(rate, 2), "step_s_small": round(small, 3), "step_s_full": round(full, 3),
        "params_m_small": round(small_params, 2), "params_m_full": round(full_params, 2),
        "full_over_small": round(full / small, 1), "renderer_share_of_full_step": round(share, 3),
    }))


if __name__ == "__main__":
    main()
