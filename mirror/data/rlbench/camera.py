"""Depth PNG decoding and back-projection of depth to world points (PyRep's camera convention)."""

from __future__ import annotations

import numpy as np

from mirror.data.rlbench.format import DEPTH_SCALE


def decode_depth(rgb: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metres from a 24-bit depth PNG (R high byte, B low byte) and the camera's near/far planes."""
    rgb = rgb.astype(np.float64)
    normalised = (rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]) / DEPTH_SCALE
    return (near + normalised * (far - near)).astype(np.float32)


def depth_to_world(depth: np.ndarray, extrinsics: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(H, W) depth in metres -> (H, W, 3) world points.

    Pixel (u = column, v = row) at depth d is the camera-frame point K^-1 (u d, v d, d); the extrinsics are
    camera-to-world (rotation R, camera position C), so world = R p + C. RLBench's intrinsics carry negative
    focal lengths, which K^-1 absorbs; this equals PyRep's `pointcloud_from_depth_and_camera_params`.
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = np.stack([u * depth, v * depth, depth.astype(np.float64)], axis=-1)
    camera = pixels @ np.linalg.inv(intrinsics).T
    world = camera @ extrinsics[:3, :3].T + extrinsics[:3, 3]
    return world.astype(np.float32)
