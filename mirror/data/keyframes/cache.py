"""The keyframe-sample cache that training reads, whatever the benchmark.

Per episode `<cache>/<task>/episode<N>/`: the keyframe observations (`rgb.npy` (K, C, H, W, 3) uint8,
`depth.npy` float16 metres, `extrinsics.npy`, `intrinsics.npy`), `clip.npy` (front-camera frames for clips)
and `meta.json` (format version, `EpisodeInfo`, the clip frames' indices and the source's fingerprint).

`damaged` checks an episode whole without reading it (meta.json and the arrays' headers and sizes): the
benchmarks' cache builders rewrite a damaged episode like a stale one, and `CacheStore` refuses one in a line.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirror.data.keyframes.records import EpisodeInfo, Sample
from mirror.data.video import segment_frames, spanned
from mirror.errors import MirrorError
from mirror.files import atomic_write

CACHE_VERSION = 3  # 3: samples hold the collision flag at the keyframe and at the frame before
EpisodeKey = tuple[str, int]  # (task, episode index)


def episode_dir(cache: Path, key: EpisodeKey) -> Path:
    return cache / key[0] / f"episode{key[1]}"


def pool_frames(length: int, pool: int) -> list[int]:
    """The frames of an episode kept for clips: up to `pool`, evenly spread from the first to the last."""
    return np.unique(np.linspace(0, length - 1, pool).round().astype(int)).tolist()


def load_meta(folder: Path) -> tuple[dict | None, str | None]:
    """An episode's meta.json and None, or None and why it cannot be read (missing, not JSON, not an object)."""
    try:
        data = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        return None, "meta.json: missing"
    except (OSError, ValueError) as err:
        return None, f"meta.json: unreadable ({err})"
    return (data, None) if isinstance(data, dict) else (None, "meta.json: unreadable (not a JSON object)")


def read_meta(folder: Path) -> dict | None:
    """An episode's meta.json, or None when it is missing or unreadable."""
    return load_meta(folder)[0]


def is_current(folder: Path, made_from: Callable[[dict], bool], again: str) -> bool:
    """Whether the cached episode in `folder` is in this format, was made from what `made_from` accepts (its
    meta.json) and is whole; a damaged one (`damaged`) is reported with a warning saying how it is redone."""
    if not (folder / "meta.json").exists():
        return False
    meta = read_meta(folder)
    if meta is not None:
        try:
            if meta.get("version") != CACHE_VERSION or not made_from(meta):
                return False
        except (KeyError, TypeError):
            return False
    problem = damaged(folder, meta)
    if problem:
        warnings.warn(f"{folder}: damaged cache episode ({problem}); {again}", stacklevel=3)
    return problem is None


def save_episode(out: Path, info: EpisodeInfo, observations: list[dict[str, np.ndarray]], clip: np.ndarray,
                 clip_frames: list[int], fingerprint: list) -> None:
    """Write one episode: one observation per sample (RGB, float16 depth, cameras), clip frames, meta.json.
    meta.json goes first and comes back last, so an episode cut off mid-write is not in the cache."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)
    np.save(out / "rgb.npy", np.stack([o["rgb"] for o in observations]))
    np.save(out / "depth.npy", np.stack([o["depth"] for o in observations]).astype(np.float16))
    np.save(out / "extrinsics.npy", np.stack([o["extrinsics"] for o in observations]))
    np.save(out / "intrinsics.npy", np.stack([o["intrinsics"] for o in observations]))
    np.save(out / "clip.npy", clip)
    meta = {"version": CACHE_VERSION, "info": asdict(info), "clip_frames": clip_frames, "fingerprint": fingerprint}
    with atomic_write(out / "meta.json") as f:
        f.write(json.dumps(meta))


ARRAYS = ("rgb", "depth", "extrinsics", "intrinsics", "clip")
_KINDS = {"u1": "uint8", "f2": "float16", "f": "float"}
_HEADER_READERS = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int, int]:
    """An .npy file's shape and dtype, the size its header implies and its actual size (reads the header only)."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        if major not in _HEADER_READERS:
            raise ValueError(f"unsupported .npy format version {major}")
        shape, _, dtype = _HEADER_READERS[major](f)
        offset, size = f.tell(), os.fstat(f.fileno()).st_size
    return shape, dtype, offset + int(np.prod(shape)) * dtype.itemsize, size


def damaged(folder: Path, meta: dict | None = None) -> str | None:
    """What is wrong with the cached episode in `folder`, or None: meta.json missing or unreadable, an array file
    missing, cut short or of another shape or dtype than meta.json and the other arrays imply (K samples, C
    cameras, H x W images, F clip frames). Reads meta.json (unless given) and the arrays' headers, no data."""
    if meta is None:
        meta, problem = load_meta(folder)
        if problem:
            return problem
    try:
        k, f = len(meta["info"]["samples"]), len(meta["clip_frames"])
    except (KeyError, TypeError) as err:
        return f"meta.json: no {err}"
    heads = {}
    for name in ARRAYS:
        path = folder / f"{name}.npy"
        try:
            shape, dtype, need, size = heads[name] = _header(path)
        except FileNotFoundError:
            return f"{name}.npy: missing"
        except (OSError, ValueError) as err:
            return f"{name}.npy: unreadable header ({err})"
        if size < need:
            return f"{name}.npy: cut short ({size} of {need} bytes)"
        if size > need:
            return f"{name}.npy: {size} bytes, {need} expected from its header ({dtype} {shape})"
    rgb = heads["rgb"][0]
    c, h, w = rgb[1:4] if len(rgb) == 5 else (None, None, None)
    expect = {"rgb": ((k, c, h, w, 3), "u1"), "depth": ((k, c, h, w), "f2"), "extrinsics": ((k, c, 4, 4), "f"),
              "intrinsics": ((k, c, 3, 3), "f"), "clip": ((f, h, w, 3), "u1")}
    for name, (shape, kind) in expect.items():
        have, dtype = heads[name][:2]
        if have != shape or not dtype.str[1:].startswith(kind):
            want = "(" + ", ".join("?" if n is None else str(n) for n in shape) + ")"
            return f"{name}.npy: {dtype} {have}, expected {_KINDS[kind]} {want}"
    return None


class DamagedCacheError(MirrorError):
    """A cached episode that cannot be read whole (see `damaged`)."""


REBUILD = "`mirror train` rewrites it before training (as does `mirror demos metaworld` or `rlbench` into this cache)"


class CacheStore:
    """Reads the preprocessed cache with memory maps: one sample costs a few hundred kilobytes of reads.

    Opening checks every episode (`damaged`; header reads only) and refuses a damaged one with one line."""

    def __init__(self, cache: str | Path, keys: list[EpisodeKey]):
        self.dirs, self.episodes, self.clip_frames = [], [], []
        self.skipped: list[str] = []
        bad = []
        for key in keys:
            folder = episode_dir(Path(cache), key)
            if not (folder / "meta.json").is_file():
                self.skipped.append(f"{folder}: not in the cache")
                continue
            meta = read_meta(folder)
            reason = damaged(folder, meta)
            if reason:
                bad.append((folder, reason))
                continue
            info = meta["info"]
            info["samples"] = [Sample(**s) for s in info["samples"]]
            self.dirs.append(folder)
            self.episodes.append(EpisodeInfo(**info))
            self.clip_frames.append(meta["clip_frames"])
        if bad:
            more = f", and {len(bad) - 1} more damaged episode(s)" if len(bad) > 1 else ""
            raise DamagedCacheError(f"{bad[0][0]}: damaged cache episode ({bad[0][1]}){more}; {REBUILD}")
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


def cache_folder(cache: str | Path, root: str | Path) -> Path:
    """A cache per source root, so several data roots can share one cache directory."""
    return Path(cache) / (Path(os.path.abspath(root)).name or "root")
