"""One joint training step of the paper's full-size configuration on CPU, batch 2, broken into its parts.

configs/rlbench/mirror.yaml as is (ViCLIP-B/16 on 8 x 224 frames with AdamW, the full ARP with LAMB), on a batch from
synthetic episodes in the real on-disk format. Each part is timed on its own with forward and backward on the
same inputs: rendering (two point-cloud renders, stage 1 and zoomed stage 2), MVT (both stages), ViCLIP,
the policy head (heatmaps of both stages, prompts, the causal sequence), the alignment, the optimiser
step. Shares are of the whole joint step measured in the same run. ARP's whole forward and backward is timed
too: `arp_rest` is its part outside rendering, MVT and the head (augmentation, the loss terms);
`other` is what nothing covers (zeroing gradients, both models' activations held at once).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.benchmarks.rlbench.datamodule import RLBenchData  # noqa: E402
from mirror.benchmarks.rlbench.synthetic import write_episode  # noqa: E402
from mirror.config import load_config  # noqa: E402
from mirror.models.execution import geometry as geo  # noqa: E402
from mirror.models.execution.policy import PROMPTS, TYPES  # noqa: E402
from mirror.models.execution.renderer import render  # noqa: E402
from mirror.training.module import MirrorModule  # noqa: E402
from mirror.training.optim import build_optimizer, build_param_groups  # noqa: E402

BATCH, REPEATS = 2, 2


def seconds(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Mean wall time of `fn` after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def backward(out: torch.Tensor) -> None:
    out.backward(torch.ones_like(out) / out.numel())


def main() -> None:
    torch.manual_seed(0)
    with TemporaryDirectory() as tmp:
        for i in range(BATCH):
            write_episode(Path(tmp) / "raw", "open_drawer", i, frames=40, size=128, seed=i)
        cfg = load_config(ROOT / "configs/rlbench/mirror.yaml", [
            f"data.root={tmp}/raw", "data.val_root=null", f"data.cache={tmp}/cache",
            "data.tasks=[open_drawer]", f"data.episodes={BATCH}", "data.val_episodes=0",
            f"data.batch_size={BATCH}", "data.num_workers=0", "data.cache_workers=1",
            "understanding.checkpoint=null", "execution.clip_checkpoint=null",
        ])
        data = RLBenchData(cfg)
        data.prepare_data()
        batch = next(iter(data.train_dataloader()))
        module = MirrorModule(cfg, data.spec).train()
    u, e, align = module.understanding, module.execution, module.alignment
    groups = build_param_groups({"understanding": u, "execution": e}, align, cfg, BATCH)
    optimizer = build_optimizer(groups, cfg)

    def joint():
        loss, _ = module.training_loss(batch, step=0)  # step 0: U's task loss and the alignment both train
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    total = seconds(joint)
    inputs = batch["execution"]
    points, colours = e.scene(inputs)
    bounds, size, zoom = e.cfg.scene_bounds, e.cfg.image_size, e.cfg.zoom
    cube, center = geo.to_cube(points, bounds), geo.to_cube(inputs["pose"][:, :3], bounds)
    valid = geo.in_bounds(points, bounds)
    zoomed = (cube - center[:, None]) * zoom
    rendering = seconds(lambda: (render(cube, colours, valid, size), render(zoomed, colours, valid, size)))
    views = [render(cube, colours, valid, size), render(zoomed, colours, valid, size)]
    language = e.language[inputs["instruction"]]
    proprio = inputs["proprio"].float()
    mvt = seconds(lambda: [backward(e.mvt[k](views[k], proprio, language)) for k in (0, 1)])
    maps = [e.mvt[k](views[k], proprio, language).detach().requires_grad_() for k in (0, 1)]
    pixels = geo.point_pixels(torch.zeros(BATCH, 3), size)
    values = [*geo.quat_to_bins(inputs["pose"][:, 3:]).unbind(1), inputs["gripper_open"].round().long(),
              inputs["ignore_collisions"].round().long()]

    def policy():
        heatmaps = [e.head.heatmaps(maps[k], k)[0] for k in (0, 1)]
        _, queries = e.head.sequence(e.head.prompts(maps[1], pixels, e.cfg.patch), values, range(PROMPTS, len(TYPES)))
        backward(torch.cat([*(h.flatten() for h in heatmaps), *(p.flatten() for p in e.head.logits(queries))]))

    head = seconds(policy)
    arp = seconds(lambda: e(inputs, task=True).loss.backward())
    viclip = seconds(lambda: u(batch["understanding"], task=True).loss.backward())
    fu = u(batch["understanding"], task=False).feature.detach()
    fe = e(inputs, task=False).feature.detach()
    keys = batch["keys"][cfg.align.positives.value]
    alignment = seconds(lambda: align(fu, fe, keys, distributed=False).loss.backward())
    optimiser = seconds(optimizer.step)
    parts = {"rendering": rendering, "mvt": mvt, "policy": head,
             "arp_rest": arp - rendering - mvt - head, "viclip": viclip,
             "alignment": alignment, "optimiser": optimiser}
    parts["other"] = total - sum(parts.values())
    print(json.dumps({
        "bench": "joint_step", "device": "cpu", "batch": BATCH, "threads": torch.get_num_threads(),
        "params_m": round(sum(p.numel() for p in module.parameters()) / 1e6, 1),
        "step_s": round(total, 2), "parts_s": {k: round(v, 3) for k, v in parts.items()},
        "shares": {k: round(v / total, 3) for k, v in parts.items()},
    }))


if __name__ == "__main__":
    main()
