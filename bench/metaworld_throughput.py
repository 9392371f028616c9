"""Meta-World throughput in one run: render milliseconds per camera (RGB vs depth), demonstrations per second
and rollout episodes per second with 1 vs 2 worker processes. Prints one JSON line.

Demos: `mirror demos metaworld` on drawer-open-v3 (expert, keyframes, 4 cameras per keyframe, 32 clip
frames), timed at two sizes so that the steady rate and the cost of starting the workers come apart.
Rollouts: episodes of the keyframe controller in spawned `RolloutPool` workers (started beforehand, as during
training), driven by random key poses in the workspace, each pose costing the 4-camera observation and
world points a trained policy gets; the policy network's own time is not included.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TASK = "drawer-open-v3"
DEMOS = (4, 12)  # training episodes per size
ROLLOUTS = 24
KEYFRAMES = 5


def render_ms(repeats: int = 20) -> dict[str, float]:
    from mirror.benchmarks.metaworld.scene import CAMERAS, Scene

    scene = Scene(TASK)
    scene.reset(0)
    out = {}
    for kind in ("rgb", "depth"):
        render = getattr(scene.cameras, kind)
        for camera in CAMERAS:
            render(scene.data, camera)
        start = time.perf_counter()
        for _ in range(repeats):
            for camera in CAMERAS:
                render(scene.data, camera)
        out[kind] = 1000 * (time.perf_counter() - start) / (repeats * len(CAMERAS))
    scene.close()
    return out


def demo_rates(workers: int) -> tuple[float, float]:
    """(steady episodes/s, start-up seconds) of `workers` processes."""
    from mirror.benchmarks.metaworld.demos import Request, generate
    from mirror.benchmarks.metaworld.scene import CAMERAS

    times = []
    for n in DEMOS:
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            generate(root, [TASK], {"train": n, "val": 0}, Request(0, CAMERAS, 128, 32), workers)
            times.append(time.perf_counter() - start)
    steady = (DEMOS[1] - DEMOS[0]) / (times[1] - times[0])
    return steady, max(0.0, times[0] - DEMOS[0] / steady)


def setup(payload: bytes):
    """Worker side: a Meta-World environment whose rollout seeds are the rollout split's."""
    from mirror.benchmarks.metaworld.env import MetaWorldEnv
    from mirror.data.seeds import episode_seed

    return MetaWorldEnv(lambda task, i, repeat: episode_seed(0, "rollout", i), {TASK: "open the drawer"},
                        max_keyframes=KEYFRAMES)


def run(env, job: tuple[str, int]):
    import numpy as np

    rng = np.random.default_rng(job[1])

    def policy(inputs: dict, instruction: str) -> np.ndarray:
        xyz = rng.uniform([-0.2, 0.5, 0.05], [0.2, 0.8, 0.3])
        return np.r_[xyz, 0, 0, 0, 1, rng.integers(0, 2), 0]

    return env.run_episode(*job, policy)


def rollout_rate(workers: int) -> float:
    from mirror.rollouts.workers import RolloutPool

    pool = RolloutPool(workers, setup, run)
    try:
        pool.map(b"", [(TASK, i) for i in range(workers)])  # start the workers and their scenes
        start = time.perf_counter()
        results = pool.map(b"", [(TASK, i) for i in range(ROLLOUTS)])
        elapsed = time.perf_counter() - start
    finally:
        pool.close()
    assert all(hasattr(r, "success") for r in results), results
    return ROLLOUTS / elapsed


def main() -> None:
    render = render_ms()
    demos = {w: demo_rates(w) for w in (1, 2)}
    rollouts = {w: rollout_rate(w) for w in (1, 2)}
    print(json.dumps({
        "render_ms_per_camera_rgb": round(render["rgb"], 1), "render_ms_per_camera_depth": round(render["depth"], 1),
        "demos_per_s_1": round(demos[1][0], 3), "demos_per_s_2": round(demos[2][0], 3),
        "demos_speedup": round(demos[2][0] / demos[1][0], 2),
        "demo_pool_start_s": round(demos[2][1], 1),
        "rollouts_per_s_1": round(rollouts[1], 3), "rollouts_per_s_2": round(rollouts[2], 3),
        "rollouts_speedup": round(rollouts[2] / rollouts[1], 2),
    }))


if __name__ == "__main__":
    main()
