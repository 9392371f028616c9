"""Time per training step of MirrorModule with alignment on vs off (align.weight=0), same toy models.

Both arms train U on every step (understanding.fraction=1), so they differ only by MirrorAlignment: the
projections into Z (1024), the loss and the projections' optimiser update. The toy models have the real
feature widths (u 768 as ViCLIP-B, e 128 as ARP) and U sees 32 frames, ~130 MMAC per sample: still
~1000x lighter than ViCLIP-B (~140 GMAC) + ARP (56 GMAC), so the real overhead is far smaller. A step is
the module's `training_loss`, backward and the optimiser it configures; the arms alternate step by step
(order flipped every step) on the same batches, since separate runs differ by more than the effect.
Prints one JSON line; the overhead must stay under 3%.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.config import load_config  # noqa: E402
from mirror.training.module import MirrorModule  # noqa: E402
from mirror.training.optim import build_optimizer, build_param_groups  # noqa: E402
from tests.toy import ToyData  # noqa: E402

STEPS, WARMUP, BATCH, THRESHOLD = 60, 10, 32, 0.03
SETTINGS = [
    "understanding.width=768", "understanding.depth=8", "data.frames=32", "execution.width=128",
    "execution.depth=4", "understanding.fraction=1", "align.dim=1024", f"data.batch_size={BATCH}",
    "data.size=640",
]


def arm(align_weight: float):
    torch.manual_seed(0)
    cfg = load_config(ROOT / "tests/configs/toy.yaml", SETTINGS + [f"align.weight={align_weight}"])
    data = ToyData(cfg)
    module = MirrorModule(cfg, data.spec).train()
    branches = {"understanding": module.understanding, "execution": module.execution}
    optimizer = build_optimizer(build_param_groups(branches, module.alignment, cfg, BATCH), cfg)
    batches = list(islice(iter(data.train_dataloader()), 8))
    return module, optimizer, batches


def step(module, optimizer, batch, i: int) -> float:
    start = time.perf_counter()
    loss, _ = module.training_loss(batch, i)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    arms = {"on": arm(0.5), "off": arm(0.0)}
    times = {name: [] for name in arms}
    for i in range(STEPS):
        for name in ("on", "off") if i % 2 else ("off", "on"):
            module, optimizer, batches = arms[name]
            times[name].append(step(module, optimizer, batches[i % len(batches)], i))
    t_on, t_off = (statistics.median(times[n][WARMUP:]) for n in ("on", "off"))
    overhead = t_on / t_off - 1
    print(json.dumps({
        "bench": "align_overhead",
        "step_ms_align_on": round(1e3 * t_on, 3),
        "step_ms_align_off": round(1e3 * t_off, 3),
        "overhead": round(overhead, 4),
        "threshold": THRESHOLD,
        "ok": overhead < THRESHOLD,
        "steps_per_arm": STEPS - WARMUP,
        "batch": BATCH,
        "threads": torch.get_num_threads(),
    }))
    sys.exit(0 if overhead < THRESHOLD else 1)


if __name__ == "__main__":
    main()
