"""Rollout videos: the frames an episode was asked to record, written as MP4 by imageio's ffmpeg plugin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirror.errors import missing_extra


def video_name(task: str, seed: int, success: bool) -> str:
    return f"{task}-seed{seed}-{'success' if success else 'failure'}.mp4"


def write_video(frames: list[np.ndarray] | np.ndarray, path: Path, fps: int) -> Path:
    """(T, H, W, 3) uint8 frames as an H.264 MP4 (sides padded to even sizes, as the codec needs)."""
    try:
        import imageio.v3 as iio
        import imageio_ffmpeg  # noqa: F401  (the encoder binary)
    except ModuleNotFoundError as err:
        raise missing_extra(err.name, "video", "Rollout videos") from None
    clip = np.asarray(frames, dtype=np.uint8)
    clip = np.pad(clip, ((0, 0), (0, clip.shape[1] % 2), (0, clip.shape[2] % 2), (0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, clip, fps=fps, codec="libx264", plugin="FFMPEG", macro_block_size=2)
    return path
