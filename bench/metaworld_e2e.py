"""The Meta-World CPU default end to end (`mirror train configs/metaworld/mirror.yaml`): demonstrations, joint
training with rollouts at each validation, and the final report, on the machine at hand, in a fresh folder.

Prints one JSON line: the wall time of each phase and in all, the policy's success (%) per task and on average
at the last validation (2 rollouts a task: a glance), recognition top-1 and alignment Recall@1; the run's time
without its setup (demonstrations, models) beside issue 31's goal of 60 min as a ratio.
    python bench/metaworld_e2e.py [--root DIR --name NAME] [KEY=VALUE ...]   (overrides go to the run, e.g. seed=1)
The run and its fresh demonstrations (`DIR/demos`) are kept under --root when it is given; `data.cache=DIR` uses
demonstrations made before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mirror.analysis.runs import read_run  # noqa: E402
from mirror.training.phases import PHASES  # noqa: E402

CONFIG = ROOT / "configs" / "metaworld" / "mirror.yaml"
GOAL_RUN_S = 60 * 60  # training and validation (with rollouts), seconds


def main(root: str | None, name: str, overrides: list[str]) -> None:
    with TemporaryDirectory() as tmp:
        root = root or tmp
        run = Path(root) / name
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mirror", "train", str(CONFIG), f"run.root={root}",
                        f"run.name={name}", f"data.cache={root}/demos", "logger=csv", *overrides], check=True)
        wall = time.perf_counter() - start
        phases = json.loads((run / "phases.json").read_text())[-1]
        record = read_run(run)
    run_s = phases[PHASES[1]] + phases[PHASES[2]]
    success = {task: mean for task, (mean, _) in record.success.items()}
    print(json.dumps({
        "bench": "metaworld_e2e", "config": str(CONFIG.relative_to(ROOT)), "overrides": overrides,
        "wall_s": round(wall, 1), "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "success": {k: round(v, 3) for k, v in success.items()},
        "recognition_top1": record.metrics.get("val/u/recognition"),
        "align_recall1": record.metrics.get("val/align/recall1"),
        "run_s": round(run_s, 1), "run_over_goal": round(run_s / GOAL_RUN_S, 3),
    }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="keep the run and its demonstrations here (default: a temporary folder)")
    parser.add_argument("--name", default="e2e")
    args, overrides = parser.parse_known_args()
    main(args.root, args.name, overrides)
