"""A writer of small synthetic RLBench episodes in the exact PerAct on-disk format, for tests and benchmarks.

The demo is pickled as RLBench pickles it (globals `rlbench.demo.Demo` and
`rlbench.backend.observation.Observation`, numpy arrays), the depth PNGs hold the 24-bit encoding, and the
four cameras look at a table plane at z = 0.75 m from fixed poses.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

from mirror.benchmarks.rlbench.format import CAMERAS, DEPTH_SCALE, episode_folder

TABLE_Z = 0.75
NEAR, FAR = 0.01, 4.5


@contextlib.contextmanager
def _rlbench_classes():
    """Plain classes registered as rlbench.demo.Demo and rlbench.backend.observation.Observation."""
    names = ["rlbench", "rlbench.demo", "rlbench.backend", "rlbench.backend.observation"]
    saved = {n: sys.modules.get(n) for n in names}
    demo_mod, obs_mod = types.ModuleType("rlbench.demo"), types.ModuleType("rlbench.backend.observation")
    demo_cls = type("Demo", (), {"__module__": "rlbench.demo"})
    obs_cls = type("Observation", (), {"__module__": "rlbench.backend.observation"})
    demo_mod.Demo, obs_mod.Observation = demo_cls, obs_cls
    sys.modules.update({"rlbench": types.ModuleType("rlbench"), "rlbench.demo": demo_mod,
                        "rlbench.backend": types.ModuleType("rlbench.backend"), "rlbench.backend.observation": obs_mod})
    try:
        yield demo_cls, obs_cls
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world 4x4 with the camera's z axis towards `target` (RLBench's camera frame)."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(np.array([0.0, 0.0, 1.0]), z)
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, z], axis=1)
    pose[:3, 3] = eye
    return pose


CAMERA_EYES = {
    "front": np.array([1.35, 0.0, 1.58]), "left_shoulder": np.array([0.3, 0.9, 1.7]),
    "right_shoulder": np.array([0.3, -0.9, 1.7]), "wrist": np.array([0.3, 0.0, 1.5]),
}


def intrinsics(size: int) -> np.ndarray:
    """RLBench-style pinhole matrix, focal lengths negative."""
    f = -size / (2 * np.tan(np.radians(30)))
    return np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])


def table_depth(extrinsics: np.ndarray, k: np.ndarray, size: int) -> np.ndarray:
    """Depth (metres along the camera axis) of the plane z = TABLE_Z seen by a camera, FAR where missed."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(k).T  # camera frame, unit depth
    world_dirs = rays @ extrinsics[:3, :3].T
    eye = extrinsics[:3, 3]
    with np.errstate(divide="ignore"):
        depth = (TABLE_Z - eye[2]) / world_dirs[..., 2]
    return np.where(depth > 0, np.minimum(depth, FAR), FAR)


def encode_depth(depth: np.ndarray) -> np.ndarray:
    value = np.round((depth - NEAR) / (FAR - NEAR) * DEPTH_SCALE).astype(np.int64).clip(0, DEPTH_SCALE)
    return np.stack([value >> 16, (value >> 8) & 255, value & 255], axis=-1).astype(np.uint8)


def write_episode(root: str | Path, task: str, index: int, frames: int = 30, variation: int = 0,
                  descriptions: list[str] | None = None, size: int = 32, seed: int = 0) -> Path:
    """An episode whose gripper closes at frame ~T/3 and reopens at ~2T/3, stopping briefly between."""
    rng = np.random.default_rng(seed)
    folder = episode_folder(root, task, index)
    descriptions = descriptions or [f"do {task.replace('_', ' ')} variant {variation}", f"please {task}"]
    close, reopen = frames // 3, 2 * frames // 3
    start, goal = np.array([0.1, -0.2, 1.1]), np.array([0.3, 0.2, 0.85])
    k = intrinsics(size)
    with _rlbench_classes() as (demo_cls, obs_cls):
        observations = []
        for t in range(frames):
            obs = obs_cls()
            pos = start + (goal - start) * t / (frames - 1)
            obs.gripper_pose = np.concatenate([pos, [0.0, 1.0, 0.0, 0.0]]).astype(np.float64)
            obs.gripper_open = 0.0 if close <= t < reopen else 1.0
            obs.gripper_joint_positions = np.full(2, 0.04 * obs.gripper_open)
            moving = t not in (close - 1, reopen - 1)
            obs.joint_velocities = rng.uniform(0.3, 1.0, 7) * (1 if moving else 0)
            obs.ignore_collisions = np.array(float(t >= reopen))
            obs.misc = {}
            for cam in CAMERAS:
                obs.misc[f"{cam}_camera_extrinsics"] = look_at(CAMERA_EYES[cam], np.array([0.2, 0.0, TABLE_Z]))
                obs.misc[f"{cam}_camera_intrinsics"] = k
                obs.misc[f"{cam}_camera_near"] = NEAR
                obs.misc[f"{cam}_camera_far"] = FAR
            observations.append(obs)
        demo = demo_cls()
        demo._observations, demo.random_seed, demo.variation_number = observations, None, variation
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "low_dim_obs.pkl").write_bytes(pickle.dumps(demo))
    (folder / "variation_descriptions.pkl").write_bytes(pickle.dumps(descriptions))
    (folder / "variation_number.pkl").write_bytes(pickle.dumps(variation))
    for cam in CAMERAS:
        depth = encode_depth(table_depth(observations[0].misc[f"{cam}_camera_extrinsics"], k, size))
        (folder / f"{cam}_rgb").mkdir(exist_ok=True)
        (folder / f"{cam}_depth").mkdir(exist_ok=True)
        for t in range(frames):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{cam}_rgb/{t}.png")
            Image.fromarray(depth).save(folder / f"{cam}_depth/{t}.png")
    return folder
