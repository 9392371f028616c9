"""BabyAI demonstrations per second and rollout episodes per second, 1 vs 2 worker processes, in one run.

Demos: minigrid's bot on GoToLocal with point-of-view frames, as `mirror demos babyai` makes them.
Rollouts: an untrained agent (same cost per step as a trained one) stepping 25 environments per job, as the
validation callback does. Prints one JSON line with the speed-ups.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirror.config import config_from_dict, load_config, to_dict  # noqa: E402
from mirror.data.babyai.demos import episode_seed, generate  # noqa: E402
from mirror.envs.babyai_rollouts import BabyAIRollouts  # noqa: E402
from mirror.models.protocol import DataSpec  # noqa: E402
from mirror.training.module import build_branch  # noqa: E402

DEMOS, ROLLOUTS = 600, 200
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
MISSIONS = [f"go to {d} {c} {o}" for d in ("the", "a") for c in COLOURS for o in ("ball", "box", "key")]


def demos_per_second(workers: int) -> float:
    seeds = [episode_seed(0, "train", i) for i in range(DEMOS)]
    start = time.perf_counter()
    generate("GoToLocal", seeds, tile=8, workers=workers, desc=f"demos x{workers}")
    return DEMOS / (time.perf_counter() - start)


class Module:
    """Just what the rollout runner reads from a MirrorModule."""

    def __init__(self, execution):
        self.execution = execution


def rollouts_per_second(workers: int) -> float:
    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "configs/babyai/mirror.yaml", [f"data.rollout_workers={workers}",
                                                           f"data.rollout_episodes={ROLLOUTS}"])
    cfg = config_from_dict(to_dict(cfg))
    spec = DataSpec(MISSIONS, ["GoToLocal"])
    runner = BabyAIRollouts(cfg, spec)
    module = Module(build_branch("execution", cfg.execution, spec))
    try:
        runner.run(module, [("GoToLocal", i) for i in range(2 * workers)])  # start the workers first
        start = time.perf_counter()
        results = runner.run(module, runner.episodes(final=False))
        elapsed = time.perf_counter() - start
    finally:
        runner.close()
    assert len(results) == ROLLOUTS and not any(r.error for r in results)
    return ROLLOUTS / elapsed


def main() -> None:
    d1, d2 = demos_per_second(1), demos_per_second(2)
    r1, r2 = rollouts_per_second(1), rollouts_per_second(2)
    print(json.dumps({
        "bench": "babyai_throughput", "level": "GoToLocal",
        "demos_per_s_1worker": round(d1, 1), "demos_per_s_2workers": round(d2, 1), "demos_speedup": round(d2 / d1, 2),
        "rollouts_per_s_1worker": round(r1, 1), "rollouts_per_s_2workers": round(r2, 1),
        "rollouts_speedup": round(r2 / r1, 2),
    }))


if __name__ == "__main__":
    main()
