"""`mirror demos babyai`: expert demonstrations of BabyAI levels, generated in parallel and cached on disk.

One `.npz` per level and split (no pickle): concatenated symbolic views, directions and actions with
episode offsets, missions and seeds, and each episode's point-of-view frames as its own zlib block, which
stays compressed in memory (minigrid frames shrink ~50x) and is decoded when a clip is drawn.
`meta.json` records what was asked for; a cache whose request or format differs is regenerated.
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirror.benchmarks.babyai.env import Episode, expert_episode, make
from mirror.data.paths import writable_folder
from mirror.data.seeds import episode_seed
from mirror.files import atomic_write
from mirror.jobs import run_jobs

FORMAT_VERSION = 2


@dataclass
class DemoSet:
    """Episodes of one level and split as flat arrays with offsets: episode e has steps[offsets[e]:offsets[e+1]]
    and T + 1 frames, compressed in frame_bytes[frame_offsets[e]:frame_offsets[e+1]]."""

    level: str
    missions: list[str]
    seeds: np.ndarray  # (E,)
    offsets: np.ndarray  # (E + 1,)
    images: np.ndarray  # (S, 7, 7, 3) uint8
    directions: np.ndarray  # (S,) uint8
    actions: np.ndarray  # (S,) uint8
    frame_bytes: np.ndarray  # (B,) uint8: zlib blocks, one per episode
    frame_offsets: np.ndarray  # (E + 1,)
    frame_shape: np.ndarray  # (3,) H, W, 3

    def __len__(self) -> int:
        return len(self.missions)

    def steps(self, e: int) -> slice:
        return slice(int(self.offsets[e]), int(self.offsets[e + 1]))

    def episode_frames(self, e: int) -> np.ndarray:
        """The episode's T + 1 point-of-view frames, (T + 1, H, W, 3) uint8."""
        block = self.frame_bytes[int(self.frame_offsets[e]) : int(self.frame_offsets[e + 1])]
        return np.frombuffer(zlib.decompress(block.tobytes()), dtype=np.uint8).reshape(-1, *self.frame_shape)

    def save(self, path: Path) -> None:
        with atomic_write(path, "wb") as f:
            np.savez(
                f, missions=np.array(self.missions), seeds=self.seeds, offsets=self.offsets, images=self.images,
                directions=self.directions, actions=self.actions, frame_bytes=self.frame_bytes,
                frame_offsets=self.frame_offsets, frame_shape=self.frame_shape,
            )

    @classmethod
    def load(cls, path: Path, level: str) -> DemoSet:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(level=level, missions=[str(m) for m in arrays.pop("missions")], **arrays)

    @classmethod
    def from_episodes(cls, level: str, episodes: Sequence[Episode]) -> DemoSet:
        lengths = [len(ep.actions) for ep in episodes]
        blocks = [np.frombuffer(zlib.compress(ep.frames.tobytes(), 1), dtype=np.uint8) for ep in episodes]
        return cls(
            level=level,
            missions=[ep.mission for ep in episodes],
            seeds=np.array([ep.seed for ep in episodes], dtype=np.int64),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            images=np.concatenate([ep.images for ep in episodes]),
            directions=np.concatenate([ep.directions for ep in episodes]),
            actions=np.concatenate([ep.actions for ep in episodes]),
            frame_bytes=np.concatenate(blocks),
            frame_offsets=np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).astype(np.int64),
            frame_shape=np.array(episodes[0].frames.shape[1:], dtype=np.int64),
        )


def _expert(args: tuple[str, int, int]) -> Episode:
    return expert_episode(*args)


def generate(level: str, seeds: Sequence[int], tile: int, workers: int, desc: str) -> tuple[DemoSet, int]:
    """Expert episodes for `seeds` (in order), in `workers` processes; unsuccessful ones are dropped."""
    episodes = run_jobs(_expert, [(level, s, tile) for s in seeds], workers, desc, chunksize=32)
    kept = [ep for ep in episodes if ep.success]
    return DemoSet.from_episodes(level, kept), len(episodes) - len(kept)


def ensure_demos(
    root: str | Path, level: str, episodes: dict[str, int], seed: int, tile: int, workers: int
) -> dict[str, Path]:
    """Paths of the level's split files, generating them unless a matching cache exists."""
    make(level).close()  # fail early on an unknown level
    folder = Path(root) / level
    meta_path = folder / "meta.json"
    request = {"version": FORMAT_VERSION, "level": level, "episodes": episodes, "seed": seed, "tile": tile}
    paths = {split: folder / f"{split}.npz" for split in episodes}
    if meta_path.is_file() and all(p.is_file() for p in paths.values()):
        if json.loads(meta_path.read_text()).get("request") == request:
            return paths
    folder.mkdir(parents=True, exist_ok=True)
    dropped = {}
    for split, count in episodes.items():
        seeds = [episode_seed(seed, split, i) for i in range(count)]
        demos, dropped[split] = generate(level, seeds, tile, workers, f"{level} {split}")
        demos.save(paths[split])
    meta_path.write_text(json.dumps({"request": request, "dropped_unsuccessful": dropped}, indent=2))
    return paths


def main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(prog="mirror demos babyai", description=__doc__.splitlines()[0])
    p.add_argument("--levels", nargs="+", default=["GoToLocal"], help="e.g. GoToLocal PickupLoc PutNextLocal")
    p.add_argument("--episodes", type=int, default=5000, help="training episodes per level")
    p.add_argument("--val-episodes", type=int, default=500, help="held-out episodes per level")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tile", type=int, default=8, help="pixels per grid cell of the point-of-view frames")
    p.add_argument("--root", default="data/babyai")
    args = p.parse_args(argv)
    writable_folder(args.root, "--root")
    for level in args.levels:
        paths = ensure_demos(
            args.root, level, {"train": args.episodes, "val": args.val_episodes}, args.seed, args.tile, args.workers
        )
        for split, path in paths.items():
            demos = DemoSet.load(path, level)
            print(f"{level} {split}: {len(demos)} episodes, {len(demos.actions)} steps, "
                  f"{len(set(demos.missions))} missions -> {path}")
