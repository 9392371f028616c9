"""Depth PNG decoding: RLBench stores depth as a 24-bit integer between the camera's near and far planes."""

from __future__ import annotations

import numpy as np

from mirror.benchmarks.rlbench.format import DEPTH_SCALE


def decode_depth(rgb: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metres from a 24-bit depth PNG (R high byte, B low byte) and the camera's near/far planes."""
    rgb = rgb.astype(np.float64)
    normalised = (rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]) / DEPTH_SCALE
    return (near + normalised * (far - near)).astype(np.float32)
