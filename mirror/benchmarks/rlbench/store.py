"""RLBench episodes as training samples: read from the raw episode folders, or preprocessed into the shared
keyframe cache (`mirror.data.keyframes.cache`, what training reads).

`RawStore` gives what `CacheStore` gives: the episodes' `EpisodeInfo`, the observation of a sample (RGB,
depth, cameras) and front-camera video clips sampled as ViCLIP does (one frame per equal segment).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mirror.benchmarks.rlbench.episode import BadEpisodeError, RawEpisode
from mirror.benchmarks.rlbench.format import CAMERAS, LOW_DIM, episode_folder
from mirror.data.keyframes.cache import EpisodeKey, episode_dir, is_current, pool_frames, save_episode
from mirror.data.video import segment_frames, spanned
from mirror.jobs import run_jobs


class RawStore:
    """Reads PNGs and pickles straight from the PerAct folders (slow; the cache is for training)."""

    def __init__(self, root: str | Path, keys: list[EpisodeKey], skip_bad: bool = False,
                 cameras: tuple[str, ...] = CAMERAS):
        self.raw: list[RawEpisode] = []
        self.skipped: list[str] = []
        for task, index in keys:
            try:
                self.raw.append(RawEpisode(episode_folder(root, task, index), task, index, cameras))
            except BadEpisodeError as err:
                if not skip_bad:
                    raise
                warnings.warn(f"skipped: {err}", stacklevel=2)
                self.skipped.append(str(err))
        self.episodes = [ep.info for ep in self.raw]

    def observation(self, e: int, k: int) -> dict[str, np.ndarray]:
        return self.raw[e].observation(self.episodes[e].samples[k].obs_frame)

    def clip(self, e: int, count: int, rng: np.random.Generator | None, span: float = 1.0) -> np.ndarray:
        return self.raw[e].front_frames(segment_frames(spanned(self.episodes[e].length, span), count, rng))


def fingerprint(folder: Path, cameras: tuple[str, ...] = CAMERAS) -> list[int]:
    """Changes when the source episode changes: size and mtime of its demo; count and folder mtime of every
    camera's frames (a frame added, removed or replaced)."""
    stat = (folder / LOW_DIM).stat()
    out = [stat.st_size, stat.st_mtime_ns]
    for sub in (folder / f"{c}_{kind}" for c in cameras for kind in ("rgb", "depth")):
        out += [sum(1 for _ in sub.glob("*.png")), sub.stat().st_mtime_ns] if sub.is_dir() else [-1, -1]
    return out


def write_episode(root: str | Path, cache: Path, key: EpisodeKey, pool: int, cameras: tuple[str, ...]) -> None:
    """Preprocess one episode: keyframe observations (RGB, float16 depth, cameras) and a pool of clip frames."""
    raw = RawEpisode(episode_folder(root, *key), *key, cameras)
    obs = [raw.observation(s.obs_frame) for s in raw.info.samples]
    frames = pool_frames(raw.info.length, pool)
    save_episode(episode_dir(cache, key), raw.info, obs, raw.front_frames(frames), frames,
                 fingerprint(raw.folder, cameras))


def _write(args: tuple) -> str | None:
    try:
        write_episode(*args)
    except BadEpisodeError as err:
        return str(err)
    return None


def build_cache(root: str | Path, cache: str | Path, keys: list[EpisodeKey], pool: int = 32,
                workers: int = 1, skip_bad: bool = False, cameras: tuple[str, ...] = CAMERAS) -> dict[EpisodeKey, str]:
    """Bring the cache up to date for `keys`: (re)write episodes whose source or format changed, or that are
    damaged (an array file missing or cut short: `mirror.data.keyframes.cache.damaged`).

    A stale episode leaves the cache before it is rewritten, so one whose source has gone bad is never read.
    Returns the errors of skipped episodes by key (with `skip_bad`; otherwise the first error is raised).
    """
    cache = Path(cache)
    stale = []
    for key in keys:
        folder, source = episode_dir(cache, key), episode_folder(root, *key)
        meta = folder / "meta.json"
        if not (meta.is_file() and (source / LOW_DIM).is_file() and _current(folder, source, pool, cameras)):
            meta.unlink(missing_ok=True)
            stale.append(key)
    errors = run_jobs(_write, [(root, cache, key, pool, cameras) for key in stale], workers, "rlbench cache")
    bad = {key: err for key, err in zip(stale, errors, strict=True) if err}
    if bad and not skip_bad:
        raise BadEpisodeError(next(iter(bad.values())))
    for err in bad.values():
        warnings.warn(f"skipped: {err}", stacklevel=2)
    return bad


def _current(folder: Path, source: Path, pool: int, cameras: tuple[str, ...]) -> bool:
    """Whether the cached episode in `folder` is whole and was made from `source` as it is now."""
    def made_from(meta: dict) -> bool:
        return meta["fingerprint"] == fingerprint(source, cameras) and \
            len(meta["clip_frames"]) == min(pool, meta["info"]["length"])

    return is_current(folder, made_from, f"rebuilding it from {source}")
