"""Rollout videos: the frames an episode was asked to record, written as MP4 by imageio's ffmpeg plugin."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from mirror.errors import missing_extra


def video_name(task: str, seed: int, success: bool) -> str:
    return f"{task}-seed{seed}-{'success' if success else 'failure'}.mp4"


def captioned(frames: np.ndarray, caption: str, width: int = 256) -> np.ndarray:
    """The frames, enlarged by a whole factor to at least `width` pixels across (nearest neighbour: nothing is
    invented), under a band that reads `caption` (the instruction and the outcome), wrapped to fit."""
    from PIL import Image, ImageDraw, ImageFont

    factor = max(1, -(-width // frames.shape[2]))
    frames = frames.repeat(factor, axis=1).repeat(factor, axis=2)
    width = frames.shape[2]
    size = max(10, min(22, width // 20))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: its small bitmap font
        font = ImageFont.load_default()
    lines = textwrap.wrap(caption, max(8, int(width / (0.55 * size)))) or [""]
    band = Image.new("RGB", (width, (size + 4) * len(lines) + 6), "white")
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * (size + 4)), line, fill="black", font=font)
    top = np.broadcast_to(np.asarray(band), (len(frames), *np.asarray(band).shape))
    return np.concatenate([top, frames], axis=1)


def marked(frame: np.ndarray, marks: list[tuple[float, float, str]], label: str = "") -> np.ndarray:
    """The frame with a ring at each (column, row, colour) mark inside it, and `label` in its top-left corner
    (for key poses: where the policy aimed and where the expert would)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image)
    r = max(3, frame.shape[1] // 48)
    for u, v, colour in marks:
        if 0 <= u < frame.shape[1] and 0 <= v < frame.shape[0]:
            draw.ellipse((u - r, v - r, u + r, v + r), outline=colour, width=max(1, r // 2))
    if label:
        draw.rectangle((0, 0, 7 * len(label) + 8, 14), fill="white")
        draw.text((4, 2), label, fill="black")
    return np.asarray(image)


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
