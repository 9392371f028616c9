"""The Meta-World CPU default end to end (`mirror train configs/metaworld/mirror.yaml`): demonstrations, joint
training with rollouts at each validation, and the final report, on the machine at hand, in a fresh folder.

Prints one JSON line: the wall time of each phase and in all, the policy's success (%) per task and on average
at the last validation, recognition top-1 and alignment Recall@1, each beside its goal (45 min, 70%) as a ratio.
    python bench/metaworld_e2e.py [--root DIR --name NAME] [KEY=VALUE ...]   (overrides go to the run, e.g. seed=1)
The run and its fresh demonstrations (`DIR/demos`) are kept under --root when it is given.
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

CONFIG = ROOT / "configs" / "metaworld" / "mirror.yaml"
GOAL_WALL_S, GOAL_SUCCESS = 45 * 60, 70.0  # seconds, mean success (%)


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
    success = {task: mean for task, (mean, _) in record.success.items()}
    print(json.dumps({
        "bench": "metaworld_e2e", "config": str(CONFIG.relative_to(ROOT)), "overrides": overrides,
        "wall_s": round(wall, 1), "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "success": {k: round(v, 3) for k, v in success.items()},
        "recognition_top1": record.metrics.get("val/u/recognition"),
        "align_recall1": record.metrics.get("val/align/recall1"),
        "wall_over_goal": round(wall / GOAL_WALL_S, 3), "success_over_goal": round(success["avg"] / GOAL_SUCCESS, 3),
    }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="keep the run and its demonstrations here (default: a temporary folder)")
    parser.add_argument("--name", default="e2e")
    args, overrides = parser.parse_known_args()
    main(args.root, args.name, overrides)
