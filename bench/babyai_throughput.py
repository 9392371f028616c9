"""BabyAI demonstrations per second and rollout episodes per second, 1 vs 2 worker processes, in one run.

Demos: minigrid's bot on GoToLocal with point-of-view frames, as `mirror demos babyai` makes them, timed at
two sizes so that the steady rate and the fixed cost of starting the worker processes come apart.
Rollouts: an untrained agent (same cost per step as a trained one) stepping 25 environments per job, as the
validation callback does, with the workers started beforehand (they live across validations). Workers are
spawned and import this file, so the heavy imports stay inside the functions. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirror.benchmarks.babyai.demos import generate  # noqa: E402
from mirror.data.seeds import episode_seed  # noqa: E402

DEMOS, ROLLOUTS = (400, 2400), 400
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
MISSIONS = [f"go to {d} {c} {o}" for d in ("the", "a") for c in COLOURS for o in ("ball", "box", "key")]


def demo_rates(workers: int) -> tuple[float, float, float]:
    """(episodes/s at the larger size, steady episodes/s, start-up seconds) for `workers` processes."""
    times = []
    for n in DEMOS:
        seeds = [episode_seed(0, "train", i) for i in range(n)]
        start = time.perf_counter()
        generate("GoToLocal", seeds, tile=8, workers=workers, desc=f"demos x{workers}")
        times.append(time.perf_counter() - start)
    steady = (DEMOS[1] - DEMOS[0]) / (times[1] - times[0])
    return DEMOS[1] / times[1], steady, max(0.0, times[0] - DEMOS[0] / steady)


class Module:
    """Just what the rollout runner reads from a MirrorModule."""

    def __init__(self, execution):
        self.execution = execution


def rollouts_per_second(workers: int) -> float:
    from mirror.benchmarks.babyai.rollouts import EPISODES_PER_JOB, BabyAIRollouts
    from mirror.config import config_from_dict, load_config, to_dict
    from mirror.models.protocol import DataSpec
    from mirror.registry import build_branch

    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "configs/babyai/mirror.yaml", [f"data.rollout_workers={workers}",
                                                           f"data.rollout_episodes={ROLLOUTS}"])
    cfg = config_from_dict(to_dict(cfg))
    spec = DataSpec(MISSIONS, ["GoToLocal"])
    runner = BabyAIRollouts(cfg, spec)
    module = Module(build_branch("execution", cfg.execution, spec))
    try:
        runner.run(module, [("GoToLocal", i) for i in range(EPISODES_PER_JOB * workers)])  # start them all
        start = time.perf_counter()
        results = runner.run(module, runner.episodes(final=False))
        elapsed = time.perf_counter() - start
    finally:
        runner.close()
    assert len(results) == ROLLOUTS and not any(r.error for r in results)
    return ROLLOUTS / elapsed


def main() -> None:
    (d1, s1, u1), (d2, s2, u2) = demo_rates(1), demo_rates(2)
    r1, r2 = rollouts_per_second(1), rollouts_per_second(2)
    print(json.dumps({
        "bench": "babyai_throughput", "level": "GoToLocal", "demos": DEMOS[1],
        "demos_per_s_1worker": round(d1, 1), "demos_per_s_2workers": round(d2, 1), "demos_speedup": round(d2 / d1, 2),
        "steady_demos_per_s_1worker": round(s1, 1), "steady_demos_per_s_2workers": round(s2, 1),
        "steady_demos_speedup": round(s2 / s1, 2),
        "startup_s_1worker": round(u1, 2), "startup_s_2workers": round(u2, 2),
        "rollouts_per_s_1worker": round(r1, 1), "rollouts_per_s_2workers": round(r2, 1),
        "rollouts_speedup": round(r2 / r1, 2),
    }))


if __name__ == "__main__":
    main()
