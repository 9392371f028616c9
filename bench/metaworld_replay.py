"""Meta-World keyframe replay: per task, the scripted expert's success over the seeds it was tried on vs the
keyframe controller's success when it replays only a demonstration's keyframes from the demonstration's
initial state (the check that the keyframes and the controller can solve the tasks). Prints one JSON line.

    python bench/metaworld_replay.py [--tasks ...] [--episodes 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from mirror.benchmarks.metaworld.control import replay  # noqa: E402
from mirror.benchmarks.metaworld.demos import record  # noqa: E402
from mirror.benchmarks.metaworld.scene import MT10, Scene  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(MT10))
    p.add_argument("--episodes", type=int, default=40, help="demonstrations per task (training seeds)")
    args = p.parse_args()
    start = time.perf_counter()
    out: dict = {"episodes": args.episodes, "tasks": {}}
    for task in args.tasks:
        scene = Scene(task)
        wins, keyframes, failed = 0, [], 0
        for index in range(args.episodes):
            demo = record(scene, "train", index, 0)
            failed += demo.failed
            targets = [(np.array(s.pose[:3]), bool(s.gripper_open)) for s in demo.info.samples]
            wins += replay(scene, demo.seed, targets)
            keyframes.append(len(targets))
        scene.close()
        out["tasks"][task] = {
            "expert_success": round(100 * args.episodes / (args.episodes + failed), 1),
            "replay_success": round(100 * wins / args.episodes, 1),
            "keyframes_mean": round(float(np.mean(keyframes)), 1), "keyframes_max": int(max(keyframes)),
        }
    rates = [t["replay_success"] for t in out["tasks"].values()]
    out["replay_success_min"], out["replay_success_mean"] = min(rates), round(float(np.mean(rates)), 1)
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
