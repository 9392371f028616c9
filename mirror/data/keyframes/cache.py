"""The keyframe-sample cache that training reads, whatever the benchmark.

Per episode `<cache>/<task>/episode<N>/`: the keyframe observations (`rgb.npy` (K, C, H, W, 3) uint8,
`depth.npy` float16 metres, `extrinsics.npy`, `intrinsics.npy`), `clip.npy` (front-camera frames for clips)
and `meta.json` (format version, `EpisodeInfo`, the clip frames' indices and the source's fingerprint).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirror.data.keyframes.records import EpisodeInfo, Sample
from mirror.data.video import segment_frames

CACHE_VERSION = 3  # 3: samples hold the collision flag at the keyframe and at the frame before
EpisodeKey = tuple[str, int]  # (task, episode index)


def episode_dir(cache: Path, key: EpisodeKey) -> Path:
    return cache / key[0] / f"episode{key[1]}"


def save_episode(out: Path, info: EpisodeInfo, observations: list[dict[str, np.ndarray]], clip: np.ndarray,
                 clip_frames: list[int], fingerprint: list) -> None:
    """Write one episode: one observation per sample (RGB, float16 depth, cameras), clip frames, meta.json."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "rgb.npy", np.stack([o["rgb"] for o in observations]))
    np.save(out / "depth.npy", np.stack([o["depth"] for o in observations]).astype(np.float16))
    np.save(out / "extrinsics.npy", np.stack([o["extrinsics"] for o in observations]))
    np.save(out / "intrinsics.npy", np.stack([o["intrinsics"] for o in observations]))
    np.save(out / "clip.npy", clip)
    meta = {"version": CACHE_VERSION, "info": asdict(info), "clip_frames": clip_frames, "fingerprint": fingerprint}
    (out / "meta.json").write_text(json.dumps(meta))


class CacheStore:
    """Reads the preprocessed cache with memory maps: one sample costs a few hundred kilobytes of reads."""

    def __init__(self, cache: str | Path, keys: list[EpisodeKey]):
        self.dirs, self.episodes, self.clip_frames = [], [], []
        self.skipped: list[str] = []
        for key in keys:
            folder = episode_dir(Path(cache), key)
            if not (folder / "meta.json").is_file():
                self.skipped.append(f"{folder}: not in the cache")
                continue
            meta = json.loads((folder / "meta.json").read_text())
            info = meta["info"]
            info["samples"] = [Sample(**s) for s in info["samples"]]
            self.dirs.append(folder)
            self.episodes.append(EpisodeInfo(**info))
            self.clip_frames.append(meta["clip_frames"])
        self._maps: dict[tuple[int, str], np.ndarray] = {}

    def _array(self, e: int, name: str) -> np.ndarray:
        key = (e, name)
        if key not in self._maps:  # opened lazily, per process (data-loader workers fork after init)
            self._maps[key] = np.load(self.dirs[e] / f"{name}.npy", mmap_mode="r")
        return self._maps[key]

    def observation(self, e: int, k: int) -> dict[str, np.ndarray]:
        return {name: np.array(self._array(e, name)[k]) for name in ("rgb", "depth", "extrinsics", "intrinsics")}

    def clip(self, e: int, count: int, rng: np.random.Generator | None, span: float = 1.0) -> np.ndarray:
        """`count` frames of the first `span` of the episode (its pool of frames spans the whole episode)."""
        pool = self._array(e, "clip")
        return np.array(pool[segment_frames(spanned(len(pool), span), count, rng)])


def spanned(length: int, span: float) -> int:
    """How many of an episode's `length` frames (or pool frames) lie in its first `span` (at least one)."""
    return max(1, min(length, int(np.ceil(span * length))))


def cache_folder(cache: str | Path, root: str | Path) -> Path:
    """A cache per source root, so several data roots can share one cache directory."""
    return Path(cache) / (Path(os.path.abspath(root)).name or "root")
