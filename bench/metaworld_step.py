"""The training step of the Meta-World CPU default (`configs/metaworld/mirror.yaml`: tiny ViCLIP + small ARP,
batch 8) under the ways a CPU step can be made faster, each as a ratio to today's default in the same run.

Variants, timed round-robin (each round runs every variant once, so drift hits all alike), median over rounds:
`fp32` (the default: fp32, the process's torch threads), `bf16` (the same step under CPU autocast to bfloat16),
`threads1` (one torch thread), `channels_last` (a copy whose 2-D convolutions are in channels-last memory format),
`compile` (a copy's loss under `torch.compile`, inductor; its compile time reported apart, or why it failed).
Also what the step does not cover, as shares of it: making a batch (8 keyframe samples and their clips from the
cache, collated) and ARP's renderer (both stages' point renders of the batch).

    python bench/metaworld_step.py [--rounds 10]   # demonstrations of 2 tasks x 2 episodes made in a temp folder
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.benchmarks.metaworld.datamodule import MetaWorldData  # noqa: E402
from mirror.config import load_config  # noqa: E402
from mirror.data.sampling import Draw  # noqa: E402
from mirror.models.execution import geometry as geo  # noqa: E402
from mirror.models.execution.renderer import render  # noqa: E402
from mirror.training.module import MirrorModule  # noqa: E402
from mirror.training.optim import build_optimizer, build_param_groups  # noqa: E402

TASKS = ["drawer-open-v3", "reach-v3"]


def stepper(module: MirrorModule, cfg, batch: dict, loss_fn: Callable | None = None,
            autocast: bool = False) -> Callable[[], None]:
    """One optimiser step of `module` on `batch` (U's task loss and the alignment both train, as at step 0)."""
    branches = {"understanding": module.understanding, "execution": module.execution}
    optimizer = build_optimizer(build_param_groups(branches, module.alignment, cfg, cfg.data.batch_size), cfg)
    loss_fn = loss_fn or module.training_loss

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss, _ = loss_fn(batch, step=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    with TemporaryDirectory() as tmp:
        cfg = load_config(ROOT / "configs/metaworld/mirror.yaml", [
            f"data.cache={tmp}", f"data.tasks=[{','.join(TASKS)}]", "data.episodes=2", "data.val_episodes=1",
            "data.test_episodes=1", "data.num_workers=0", "data.demo_workers=1"])
        data = MetaWorldData(cfg)
        samples = data.train_set()
        n = cfg.data.batch_size
        make_batch = lambda: data.collate([samples[Draw(i, (0, 0, i))] for i in range(n)])  # noqa: E731
        batch = make_batch()
        loader_s = statistics.median(timed(make_batch) for _ in range(5))
    module = MirrorModule(cfg, data.spec).train()
    variants: dict[str, tuple[Callable[[], None], Callable[[], None] | None]] = {
        "fp32": (stepper(module, cfg, batch), None),
        "bf16": (stepper(module, cfg, batch, autocast=True), None),
        "threads1": (stepper(module, cfg, batch), lambda: torch.set_num_threads(1)),
    }
    last = copy.deepcopy(module)
    for layer in last.modules():  # the 2-D convolutions' weights (MVT); convolutions carry the format onwards
        if isinstance(layer, torch.nn.Conv2d):
            layer.to(memory_format=torch.channels_last)
    variants["channels_last"] = (stepper(last, cfg, batch), None)
    out: dict = {"bench": "metaworld_step", "batch": n, "threads": threads, "rounds": args.rounds}
    compiled = copy.deepcopy(module)
    try:
        loss_fn = torch.compile(compiled.training_loss)
        step = stepper(compiled, cfg, batch, loss_fn)
        out["compile_s"] = round(timed(step), 1)  # the first call compiles
        variants["compile"] = (step, None)
    except Exception as err:  # inductor needs a C++ compiler and may not handle every op: say why
        out["compile_failed"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    for step, _ in variants.values():
        step()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, setup) in variants.items():
            if setup is not None:
                setup()
            times[name].append(timed(step))
            torch.set_num_threads(threads)
    median = {name: statistics.median(t) for name, t in times.items()}
    e, inputs = module.execution, batch["execution"]
    points, colours = e.scene(inputs)
    bounds, size, zoom = e.cfg.scene_bounds, e.cfg.image_size, e.cfg.zoom
    cube, centre = geo.to_cube(points, bounds), geo.to_cube(inputs["pose"][:, :3], bounds)
    valid = geo.in_bounds(points, bounds)
    render_s = statistics.median(timed(lambda: (render(cube, colours, valid, size),
                                                render((cube - centre[:, None]) * zoom, colours, valid, size)))
                                 for _ in range(5))
    out.update({
        "step_ms": {k: round(1000 * v, 1) for k, v in median.items()},
        "ratio_to_fp32": {k: round(v / median["fp32"], 3) for k, v in median.items()},
        "loader_ms_per_batch": round(1000 * loader_s, 1), "loader_share": round(loader_s / median["fp32"], 3),
        "render_ms": round(1000 * render_s, 1), "render_share": round(render_s / median["fp32"], 3),
    })
    print(json.dumps(out))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
