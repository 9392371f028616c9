"""RLBench training samples per second in one process, read from raw episode folders vs from the cache.

Synthetic episodes in the real on-disk format at the real size (4 cameras, 128 x 128, ~120 frames) are
written to a temporary folder; each read is one full training item (4-camera RGB, world points, a partner
clip of 8 front frames). The cache must give >= 50 samples/s per core (a 2-GPU ARP run uses ~180/s).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirror.benchmarks.rlbench.datamodule import RLBenchData  # noqa: E402
from mirror.benchmarks.rlbench.synthetic import write_episode  # noqa: E402
from mirror.config import load_config  # noqa: E402
from mirror.data.sampling import Draw  # noqa: E402

EPISODES, FRAMES, SIZE, READS = 6, 120, 128, 60


def samples_per_second(root: Path, cache: Path, use_cache: bool) -> float:
    cfg = load_config(Path(__file__).resolve().parent.parent / "tests/configs/toy.yaml", [
        "data.name=rlbench", f"data.root={root}", f"data.cache={cache}", "data.tasks=[open_drawer]",
        f"data.episodes={EPISODES}", "data.val_episodes=0", f"data.use_cache={use_cache}", "data.cache_workers=1",
        "understanding.name=tests.toy:ToyUnderstanding",
    ])
    dataset = RLBenchData(cfg).train_set()
    dataset[Draw(0, (0, 0, 0))]
    start = time.perf_counter()
    for i in range(READS):
        dataset[Draw(i % len(dataset), (0, 0, i))]
    return READS / (time.perf_counter() - start)


def main() -> None:
    with TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "raw", Path(tmp) / "cache"
        for i in range(EPISODES):
            write_episode(root, "open_drawer", i, frames=FRAMES, size=SIZE, seed=i)
        raw = samples_per_second(root, cache, use_cache=False)
        cached = samples_per_second(root, cache, use_cache=True)
    print(json.dumps({
        "bench": "rlbench_samples", "image_size": SIZE, "cameras": 4, "clip_frames": 8,
        "samples_per_s_raw": round(raw, 1), "samples_per_s_cache": round(cached, 1),
        "speedup": round(cached / raw, 1), "target_per_core": 50, "ok": cached >= 50,
    }))


if __name__ == "__main__":
    main()
