"""ARP on one CPU thread: the renderer (4 x 128 x 128 points -> 3 views of 224 x 224, stage 1 and the zoomed
stage 2) in ms per sample, and the training step of a small and the full configuration, in one run; prints
the renderer's share of a full step (two renders per sample). One thread, so that the figures hold on a
machine shared with other work."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.config import load_config  # noqa: E402
from mirror.models.execution import geometry as geo  # noqa: E402
from mirror.models.execution.arp import ARP  # noqa: E402
from mirror.models.execution.renderer import render  # noqa: E402
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


def render_ms(inputs: dict, zoom: float, repeats: int = 9) -> float:
    """Best ms per sample of one render over `repeats` (zoom 1: stage 1; otherwise stage 2 about the target); the
    best, not the median, so that other work on a shared machine shows as little as possible."""
    points, colours = ARP.scene(inputs)
    bounds = load_config(ROOT / "configs/rlbench/arp.yaml").execution.scene_bounds
    cube, valid = geo.to_cube(points, bounds), geo.in_bounds(points, bounds)
    cube = (cube - geo.to_cube(inputs["pose"][:, :3], bounds)[:, None]) * zoom if zoom != 1 else cube
    render(cube, colours, valid)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        render(cube, colours, valid)
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / BATCH


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
    torch.set_num_threads(1)
    torch.manual_seed(0)
    inputs = batch()
    stage1, stage2 = render_ms(inputs, 1.0), render_ms(inputs, 4.0)
    small, small_params = step_seconds(SMALL, inputs, 3)
    full, full_params = step_seconds([], inputs, 2)
    print(json.dumps({
        "bench": "arp_step", "device": "cpu", "batch": BATCH, "threads": torch.get_num_threads(),
        "render_ms_per_sample": round(stage1, 2), "render_zoomed_ms_per_sample": round(stage2, 2),
        "step_s_small": round(small, 3), "step_s_full": round(full, 3),
        "params_m_small": round(small_params, 2), "params_m_full": round(full_params, 3),
        "full_over_small": round(full / small, 1),
        "renderer_share_of_full_step": round(BATCH * (stage1 + stage2) / 1000 / full, 4),
    }))


if __name__ == "__main__":
    main()
