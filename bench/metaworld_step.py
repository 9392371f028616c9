"""The training step of the Meta-World CPU default (`configs/metaworld/mirror.yaml`: tiny ViCLIP + small ARP,
batch 8) against the same step before this work and under the other ways a CPU step can be made faster.

Every variant runs in its own process (memory settings are per process), one process per variant and round,
variants taking turns round by round so drift hits all alike; each process times `--steps` steps after two
warm-up steps and the median over rounds is reported, with its ratio to `default`:
`default` (today's code and config, 2 threads whose OpenMP workers spin while they wait, as `mirror train` runs
alone), `before` (the code and config of `--before`, a git revision checked out in a temporary worktree),
`before_as_trained` (that code at one thread, as `mirror train` ran the default beside its loader worker until
2026-12-07), `passive` (today's, OpenMP threads sleeping while they wait, as `mirror train` made them until then),
`arp_dropout` (today's, with ARP's dropout 0.1 back), `malloc` (today's, with glibc's malloc keeping freed memory:
MALLOC_MMAP_MAX_=0 and a large MALLOC_TRIM_THRESHOLD_), `threads1`, `bf16` (CPU autocast), `channels_last` (2-D
convolutions), `compile` (the loss under `torch.compile`, inductor; its compile time reported apart, or why it
failed).
Also, in `default`'s processes, the shares of the step that making a batch and ARP's renderer take.

    python bench/metaworld_step.py [--rounds 3] [--steps 6] [--before 89007fb]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
TASKS = ["drawer-open-v3", "reach-v3"]
DATA = [f"data.tasks=[{','.join(TASKS)}]", "data.episodes=2", "data.val_episodes=1", "data.test_episodes=1",
        "data.num_workers=0", "data.demo_workers=1"]
VARIANTS = {  # name: (source, config overrides, child options)
    "default": ("today", [], {}),
    "before": ("before", [], {}),
    "before_as_trained": ("before", [], {"threads": 1}),
    "passive": ("today", [], {"env": {"OMP_WAIT_POLICY": "PASSIVE"}}),
    "arp_dropout": ("today", ["execution.dropout=0.1"], {}),
    "malloc": ("today", [], {"env": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "4000000000"}}),
    "threads1": ("today", [], {"threads": 1}),
    "bf16": ("today", [], {"bf16": True}),
    "channels_last": ("today", [], {"channels_last": True}),
    "compile": ("today", [], {"compile": True}),
}

CHILD = r'''
import json, statistics, sys, time
import torch
opts = json.loads(sys.argv[1])
sys.path.insert(0, opts["source"])
from mirror.benchmarks.metaworld.datamodule import MetaWorldData
from mirror.config import load_config
from mirror.data.sampling import Draw
from mirror.training.module import MirrorModule
from mirror.training.optim import build_optimizer, build_param_groups

def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

torch.set_num_threads(opts["threads"])
torch.manual_seed(0)
cfg = load_config(opts["source"] + "/configs/metaworld/mirror.yaml", opts["overrides"])
data = MetaWorldData(cfg)
samples = data.train_set()
make_batch = lambda: data.collate([samples[Draw(i, (0, 0, i))] for i in range(cfg.data.batch_size)])
batch = make_batch()
module = MirrorModule(cfg, data.spec).train()
if opts.get("channels_last"):
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d):
            layer.to(memory_format=torch.channels_last)
branches = {"understanding": module.understanding, "execution": module.execution}
optimizer = build_optimizer(build_param_groups(branches, module.alignment, cfg, cfg.data.batch_size), cfg)
loss_fn = torch.compile(module.training_loss) if opts.get("compile") else module.training_loss

def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.get("bf16", False)):
        loss, _ = loss_fn(batch, step=0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

out = {"first_s": timed(step)}  # compiles, for `compile`
step()
out["step_s"] = statistics.median(timed(step) for _ in range(opts["steps"]))
if opts.get("shares"):
    from mirror.models.execution import geometry as geo
    from mirror.models.execution.renderer import render
    e, inputs = module.execution, batch["execution"]
    placed = e.placed(inputs, train=True, noisy=False)
    cube, colours, valid = placed["cube"], placed["colours"], placed["valid"]
    centre = placed["target"][:, None]
    size, zoom = e.cfg.image_size, e.cfg.zoom
    out["render_s"] = statistics.median(timed(lambda: (render(cube, colours, valid, size),
                                        render((cube - centre) * zoom, colours, valid, size))) for _ in range(5))
    out["loader_s"] = statistics.median(timed(make_batch) for _ in range(5))
print("RESULT " + json.dumps(out))
'''


def child(source: Path, overrides: list[str], steps: int, options: dict) -> dict:
    """Run one variant's process and return what it measured."""
    opts = {"source": str(source), "overrides": overrides, "steps": steps, "threads": 2, **options}
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # OpenMP's default unless a variant sets it
    env = {**env, "PYTHONPATH": str(source), **opts.pop("env", {})}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(opts)], capture_output=True, text=True,
                          env=env, cwd=source)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"failed": last[:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--before", default="89007fb", help="git revision of the code before this work")
    parser.add_argument("--only", nargs="*", default=None, help="variants to run (default: all)")
    args = parser.parse_args()
    names = [n for n in VARIANTS if args.only is None or n in args.only or n == "default"]
    with TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before],
                       check=True, capture_output=True)
        try:
            sources = {"today": ROOT, "before": worktree}
            data = [f"data.cache={tmp}/cache", *DATA]
            child(ROOT, data, 1, {"threads": 1})  # makes the demonstrations once
            runs: dict[str, list[dict]] = {n: [] for n in names}
            for r in range(args.rounds):
                for name in names:
                    source, overrides, options = VARIANTS[name]
                    shares = {"shares": True} if name == "default" else {}
                    runs[name].append(child(sources[source], data + overrides, args.steps, {**options, **shares}))
                    print(f"round {r + 1}/{args.rounds} {name}: {runs[name][-1]}", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
    out: dict = {"bench": "metaworld_step", "batch": 8, "threads": 2, "rounds": args.rounds, "steps": args.steps,
                 "before": args.before}
    median = {n: statistics.median(r["step_s"] for r in rs) for n, rs in runs.items()
              if all("step_s" in r for r in rs)}
    out["step_ms"] = {n: round(1000 * v, 1) for n, v in median.items()}
    out["ratio_to_default"] = {n: round(v / median["default"], 3) for n, v in median.items()}
    out["speedup_over_before"] = round(median["before"] / median["default"], 2) if "before" in median else None
    as_trained = median.get("before_as_trained")
    out["speedup_over_before_as_trained"] = round(as_trained / median["default"], 2) if as_trained else None
    if "compile" in runs and "compile" in median:
        out["compile_first_step_s"] = round(statistics.median(r["first_s"] for r in runs["compile"]), 1)
    failed = {n: rs[0]["failed"] for n, rs in runs.items() if "failed" in rs[0]}
    if failed:
        out["failed"] = failed
    d = runs["default"]
    out["render_share"] = round(statistics.median(r["render_s"] for r in d) / median["default"], 3)
    out["loader_share"] = round(statistics.median(r["loader_s"] for r in d) / median["default"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
