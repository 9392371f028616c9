"""`mirror demos rlbench --src ROOT --dst CACHE`: preprocess PerAct-format episodes into the training cache.

The cache holds each keyframe sample's 4-camera RGB, float16 depth and camera matrices, and a pool of
front-camera frames for clips; an episode is rewritten when its source or the cache format changes.
Data generation itself runs in the RLBench docker image (see the README).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mirror.benchmarks.rlbench.format import TASKS, episode_indices
from mirror.benchmarks.rlbench.store import build_cache
from mirror.data.keyframes.cache import cache_folder
from mirror.data.paths import writable_folder
from mirror.errors import ConfigError


def main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(prog="mirror demos rlbench", description=__doc__.splitlines()[0])
    p.add_argument("--src", required=True, help="PerAct-format root: <src>/<task>/all_variations/episodes/")
    p.add_argument("--dst", default="data/cache/rlbench", help="cache directory (one sub-folder per source root)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--episodes", type=int, default=None, help="first N episodes per task (default: all)")
    p.add_argument("--pool", type=int, default=32, help="front-camera frames kept per episode for clips")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable episodes (counted) instead of failing")
    args = p.parse_args(argv)
    if not Path(args.src).is_dir():
        raise ConfigError(f"--src: folder not found: {args.src}")
    keys = [(t, i) for t in args.tasks for i in episode_indices(args.src, t)[: args.episodes]]
    if not keys:
        raise ConfigError(f"--src: no episodes of {', '.join(args.tasks)} under {args.src} "
                          "(expected <src>/<task>/all_variations/episodes/episode<N>/)")
    folder = writable_folder(cache_folder(args.dst, args.src), "--dst")
    skipped = build_cache(args.src, folder, keys, args.pool, args.workers, args.skip_bad)
    print(f"cache {folder}: {len(keys) - len(skipped)} episodes ready, {len(skipped)} skipped")
    for err in skipped.values():
        print(f"  skipped: {err}")
