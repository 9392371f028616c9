"""Start-up cost of `mirror` commands and worker processes against `import torch` measured in the same run.

Each figure is the median wall time of fresh interpreters (3 by default): `import torch` (the floor of anything
that trains), `mirror train --help`, importing the training run module, importing what a BabyAI and an RLBench
rollout worker import before their first job, importing `mirror report`'s module, and a whole 1-step
`mirror train tests/configs/toy.yaml` (start-up to the first training step, plus a checkpoint). `--root` measures
another checkout of mirror (e.g. an older commit) with the same commands.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "import_torch": ["-c", "import torch"],
    "train_help": ["-m", "mirror", "train", "--help"],
    "import_train_run": ["-c", "import mirror.training.run"],
    "import_babyai_worker": ["-c", "import mirror.benchmarks.babyai.rollouts"],
    "import_rlbench_worker": ["-c", "import mirror.benchmarks.rlbench.rollouts"],
    "import_report": ["-c", "import mirror.analysis.report"],
}


def wall(args: list[str], root: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the mirror checkout to measure")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in [*COMMANDS, "toy_first_step"]}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, command in COMMANDS.items():
                times[name].append(wall(command, args.root))
            toy = ["-m", "mirror", "train", "tests/configs/toy.yaml", "trainer.max_steps=1", "trainer.val_every=0",
                   "logger=none", f"run.root={tmp}", f"run.name=r{r}"]
            times["toy_first_step"].append(wall(toy, args.root))
    median = {name: statistics.median(t) for name, t in times.items()}
    torch_s = median["import_torch"]
    out = {"root": str(args.root), "repeats": args.repeats, "cpus": os.cpu_count(),
           **{f"{k}_s": round(v, 2) for k, v in median.items()},
           **{f"{k}_over_torch": round(v / torch_s, 2) for k, v in median.items() if k != "import_torch"}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
