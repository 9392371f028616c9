"""Back-projection of depth to world points, one convention for every benchmark (PyRep's camera frame)."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=16)
def _rays(h: int, w: int, camera_to_world: bytes) -> np.ndarray:
    """(H, W, 3) world direction of each pixel per metre of depth, R K^-1 (u, v, 1); cameras rarely move, so
    each camera's rays are made once."""
    m = np.frombuffer(camera_to_world).reshape(3, 3)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ m.T
    rays.flags.writeable = False
    return rays


def depth_to_world(depth: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) world points.

    Pixel (u = column, v = row) at depth d is the camera-frame point K^-1 (u d, v d, d); the extrinsics are
    camera-to-world (rotation R, camera position C), so world = d R K^-1 (u, v, 1) + C. RLBench's intrinsics
    carry negative focal lengths, which K^-1 absorbs; this equals PyRep's `pointcloud_from_depth_and_camera_params`.
    """
    e = np.asarray(extrinsics, dtype=np.float64)
    m = e[:3, :3] @ np.linalg.inv(np.asarray(intrinsics, dtype=np.float64))
    rays = _rays(*depth.shape, np.ascontiguousarray(m).tobytes())
    world = np.asarray(depth, dtype=np.float64)[..., None] * rays + e[:3, 3]
    return world.astype(np.float32)


def world_points(obs: dict[str, np.ndarray]) -> np.ndarray:
    """(C, H, W, 3) world points of an observation (depth, extrinsics, intrinsics per camera)."""
    return np.stack([depth_to_world(d.astype(np.float32), e, k)
                     for d, e, k in zip(obs["depth"], obs["extrinsics"], obs["intrinsics"], strict=True)])


def world_to_pixel(points: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 3) world points -> (N, 3) pixel column, row and depth along the camera axis: the inverse of
    `depth_to_world` (a point behind the camera has depth <= 0)."""
    camera = (np.asarray(points, dtype=np.float64) - extrinsics[:3, 3]) @ extrinsics[:3, :3]
    pixels = camera @ intrinsics.T
    depth = pixels[:, 2:]
    return np.concatenate([pixels[:, :2] / np.where(np.abs(depth) < 1e-9, 1e-9, depth), camera[:, 2:]], axis=1)
