"""Reading one RLBench episode folder: its demo, descriptions, variation, frames and keyframe samples.

Bad data (a missing or unreadable file, a frame count that differs from the demo, an unknown pickled class)
raises `BadEpisodeError` naming the episode folder and the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mirror.benchmarks.rlbench import pickles
from mirror.benchmarks.rlbench.camera import decode_depth
from mirror.benchmarks.rlbench.format import CAMERAS, DESCRIPTIONS, LOW_DIM, VARIATION, frame_path
from mirror.benchmarks.rlbench.keyframes import keyframes
from mirror.data.keyframes.points import depth_to_world
from mirror.data.keyframes.records import EpisodeInfo, Sample
from mirror.errors import MirrorError


class BadEpisodeError(MirrorError):
    """An episode folder that cannot be read; the message names the folder and the file."""


def _bad(folder: Path, name: str, problem: str) -> BadEpisodeError:
    return BadEpisodeError(f"{folder}: {name}: {problem}")


def read_pickle(folder: Path, name: str):
    path = folder / name
    if not path.is_file():
        raise _bad(folder, name, "missing")
    try:
        return pickles.load(path)
    except pickles.UnsafePickleError as err:
        raise _bad(folder, name, str(err)) from None
    except Exception as err:  # an untrusted file: whatever fails while reading it makes it a bad one
        raise _bad(folder, name, f"unreadable pickle ({type(err).__name__}: {err})") from None


def read_png(folder: Path, camera: str, kind: str, frame: int) -> np.ndarray:
    path = frame_path(folder, camera, kind, frame)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise _bad(folder, str(path.relative_to(folder)), "missing frame") from None
    except (UnidentifiedImageError, OSError) as err:
        raise _bad(folder, str(path.relative_to(folder)), f"unreadable PNG ({err})") from None


def check_frames(folder: Path, length: int, cameras: tuple[str, ...] = CAMERAS) -> None:
    """Every camera folder holds exactly the demo's frames 0 .. T-1."""
    for camera in cameras:
        for kind in ("rgb", "depth"):
            sub = folder / f"{camera}_{kind}"
            if not sub.is_dir():
                raise _bad(folder, sub.name, "missing camera folder")
            count = sum(1 for _ in sub.glob("*.png"))
            if count != length:
                raise _bad(folder, sub.name, f"{count} frames, but {LOW_DIM} has {length} observations")


def _floats(values, count: int, what: str) -> list[float]:
    out = [float(x) for x in values]
    if len(out) != count:
        raise ValueError(f"{what} has {len(out)} values, not {count}")
    return out


def samples(demo: pickles.Demo, keys: list[int]) -> list[Sample]:
    """One sample per keyframe k: observation at the previous keyframe (frame 0 for the first)."""
    out = []
    for j, k in enumerate(keys):
        obs = demo[keys[j - 1] if j else 0]
        target = demo[k]
        out.append(Sample(
            obs_frame=keys[j - 1] if j else 0, target_frame=k, step=j,
            pose=_floats(target.gripper_pose, 7, f"gripper_pose of frame {k}"), gripper_open=float(target.gripper_open),
            ignore_collisions=float(target.ignore_collisions),
            ignore_collisions_before=float(demo[max(0, k - 1)].ignore_collisions),
            proprio=[float(obs.gripper_open), *_floats(obs.gripper_joint_positions, 2, "gripper_joint_positions")],
        ))
    return out


class RawEpisode:
    """An episode folder in the PerAct format, read on demand."""

    def __init__(self, folder: Path, task: str, index: int, cameras: tuple[str, ...] = CAMERAS):
        self.folder, self.cameras = folder, cameras
        if not folder.is_dir():
            raise BadEpisodeError(f"{folder}: episode folder not found")
        self.demo = read_pickle(folder, LOW_DIM)
        if not isinstance(self.demo, pickles.Demo):
            raise _bad(folder, LOW_DIM, f"holds a {type(self.demo).__name__}, not an RLBench Demo")
        descriptions = read_pickle(folder, DESCRIPTIONS)
        if not (isinstance(descriptions, list) and descriptions and all(isinstance(d, str) for d in descriptions)):
            raise _bad(folder, DESCRIPTIONS, "expected a non-empty list of strings")
        variation = read_pickle(folder, VARIATION)
        if not isinstance(variation, int | np.integer):
            raise _bad(folder, VARIATION, "expected an integer")
        check_frames(folder, len(self.demo), cameras)
        try:
            keys = keyframes(self.demo)
            self.info = EpisodeInfo(task, index, int(variation), descriptions, len(self.demo), keys,
                                    samples(self.demo, keys))
        except (AttributeError, TypeError, ValueError, IndexError, KeyError) as err:
            raise _bad(folder, LOW_DIM, f"cannot read the demo ({type(err).__name__}: {err})") from None

    def camera_params(self, frame: int, camera: str) -> tuple[np.ndarray, np.ndarray, float, float]:
        try:
            misc = self.demo[frame].misc
            extrinsics = np.asarray(misc[f"{camera}_camera_extrinsics"], dtype=np.float64)
            intrinsics = np.asarray(misc[f"{camera}_camera_intrinsics"], dtype=np.float64)
            near, far = float(misc[f"{camera}_camera_near"]), float(misc[f"{camera}_camera_far"])
        except KeyError as err:
            raise _bad(self.folder, LOW_DIM, f"frame {frame} lacks camera parameter {err}") from None
        except (AttributeError, TypeError, ValueError) as err:
            raise _bad(self.folder, LOW_DIM, f"frame {frame}: bad {camera} camera parameters ({err})") from None
        if extrinsics.shape != (4, 4) or intrinsics.shape != (3, 3):
            raise _bad(self.folder, LOW_DIM, f"frame {frame}: {camera} camera matrices are {extrinsics.shape} and "
                       f"{intrinsics.shape}, not (4, 4) and (3, 3)")
        return extrinsics, intrinsics, near, far

    def observation(self, frame: int) -> dict[str, np.ndarray]:
        """RGB (C, H, W, 3) uint8, depth (C, H, W) metres and camera matrices of one frame, all cameras."""
        rgb, depth, ext, intr = [], [], [], []
        for camera in self.cameras:
            e, k, near, far = self.camera_params(frame, camera)
            rgb.append(read_png(self.folder, camera, "rgb", frame))
            depth.append(decode_depth(read_png(self.folder, camera, "depth", frame), near, far))
            ext.append(e)
            intr.append(k)
        return {"rgb": np.stack(rgb), "depth": np.stack(depth), "extrinsics": np.stack(ext),
                "intrinsics": np.stack(intr)}

    def points(self, frame: int, camera: str) -> np.ndarray:
        """World points (H, W, 3) of one camera at one frame."""
        e, k, near, far = self.camera_params(frame, camera)
        return depth_to_world(decode_depth(read_png(self.folder, camera, "depth", frame), near, far), e, k)

    def front_frames(self, frames: list[int]) -> np.ndarray:
        """Front-camera RGB frames (N, H, W, 3) for video clips."""
        return np.stack([read_png(self.folder, "front", "rgb", f) for f in frames])
