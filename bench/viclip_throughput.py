"""ViCLIP-B/16 video-encoder forward+backward throughput (clips/s) on 8 x 224 x 224 clips, masking 0 vs 0.9.

Both settings run in one process on the same random clips; prints one JSON line with the speed-up that
dropping 90% of the patch tokens gives (ViCLIP's pre-training masking).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mirror.models.understanding.viclip import SIZES  # noqa: E402
from mirror.models.understanding.video_encoder import VideoEncoder  # noqa: E402

BATCH, WARMUP, REPEATS = 2, 1, 3


def clips_per_second(encoder: VideoEncoder, video: torch.Tensor, ratio: float) -> float:
    def step():
        pooled, projected = encoder(video, ratio)
        projected.sum().backward()

    for _ in range(WARMUP):
        step()
    start = time.perf_counter()
    for _ in range(REPEATS):
        step()
    return BATCH * REPEATS / (time.perf_counter() - start)


def main() -> None:
    torch.manual_seed(0)
    s = SIZES["B/16"]
    encoder = VideoEncoder(s["image"], s["patch"], s["width"], s["layers"], s["heads"], 8, s["embed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder.to(device)
    video = torch.randn(BATCH, 3, 8, 224, 224, device=device)
    full = clips_per_second(encoder, video, 0.0)
    masked = clips_per_second(encoder, video, 0.9)
    print(json.dumps({
        "bench": "viclip_throughput", "size": "B/16", "frames": 8, "device": device, "batch": BATCH,
        "clips_per_s_mask0": round(full, 3), "clips_per_s_mask09": round(masked, 3),
        "speedup": round(masked / full, 2),
    }))


if __name__ == "__main__":
    main()
