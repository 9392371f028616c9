"""Memory of a Meta-World rollout worker: its resident size after playing one short episode in each task, round
after round, with every episode filmed against none (each in a fresh process). Filming must not make a
worker grow with the number of tasks it has filmed. Prints one JSON line.

    python bench/metaworld_worker_memory.py [--rounds 2] [--tasks ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.config import load_config  # noqa: E402

SUITE = list(load_config(ROOT / "configs/metaworld/mirror.yaml").data.tasks)  # the CPU default's 16 tasks


def resident_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def worker(tasks: list[str], rounds: int, video: bool) -> list[float]:
    """As a rollout worker does: one environment, one episode per task and round; the RSS after each round."""
    import numpy as np

    from mirror.benchmarks.metaworld.env import MetaWorldEnv

    env = MetaWorldEnv(0, "test", max_keyframes=1)
    still = np.array([0.0, 0.6, 0.2, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0])  # one key pose above the table
    sizes = []
    for r in range(rounds):
        for task in tasks:
            env.run_episode(task, r, lambda inputs, instruction: still, video=video)
        sizes.append(round(resident_mb()))
    return sizes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=SUITE)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--video", type=int, choices=(0, 1), help=argparse.SUPPRESS)  # the measuring process
    args = p.parse_args()
    if args.video is not None:
        print(json.dumps(worker(args.tasks, args.rounds, bool(args.video))))
        return
    out: dict = {"tasks": len(args.tasks), "rounds": args.rounds}
    for video in (0, 1):
        run = subprocess.run([sys.executable, __file__, "--video", str(video), "--rounds", str(args.rounds),
                              "--tasks", *args.tasks], capture_output=True, text=True, check=True)
        out["filmed_rss_mb" if video else "plain_rss_mb"] = json.loads(run.stdout.strip().splitlines()[-1])
    out["filmed_over_plain"] = round(out["filmed_rss_mb"][-1] / out["plain_rss_mb"][-1], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
