"""ViCLIP's video encoder: a CLIP ViT inflated to video with joint spatio-temporal attention.

Per-frame patch embedding (a 3-D convolution with temporal kernel 1), the spatial positional embedding
shared by all frames, a temporal positional embedding [1, T, width] (zero at init; a single frame gets its
mean, as in the official code), one class token, all T x N patch tokens attended jointly, ln_post on the
class token, then `proj`. Stochastic depth rising linearly to `drop_path` over the blocks, drawn as the
official code draws it. Parameter names match the official checkpoint's `vision_encoder.*` keys; the blocks
are open_clip's.
"""

from __future__ import annotations

import torch
from open_clip.transformer import LayerNorm, QuickGELU, Transformer
from torch import Tensor, nn


class StochasticDepth(nn.Module):
    """Drops a residual branch at random in training, rescaled by 1 / keep. The official ViCLIP runs its blocks
    sequence-first, so timm's DropPath there draws one keep-or-drop per token position, shared by the batch;
    so does this on batch-first tokens (B, L, W)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1 - self.p
        return x * x.new_empty(1, x.shape[1], 1).bernoulli_(keep).div_(keep)


class VideoEncoder(nn.Module):
    def __init__(self, image_size: int, patch: int, width: int, layers: int, heads: int, frames: int, output_dim: int,
                 drop_path: float = 0.0):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch}")
        self.image_size, self.patch, self.frames = image_size, patch, frames
        grid = image_size // patch
        scale = width**-0.5
        self.conv1 = nn.Conv3d(3, width, kernel_size=(1, patch, patch), stride=(1, patch, patch), bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, frames, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act_layer=QuickGELU)
        for block, p in zip(self.transformer.resblocks, torch.linspace(0, drop_path, layers).tolist(), strict=True):
            block.ls_1, block.ls_2 = StochasticDepth(p), StochasticDepth(p)  # open_clip's (identity) layer scales
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def tokens(self, video: Tensor) -> Tensor:
        """Patch tokens with spatial and temporal position, (B, T * N, width); video is (B, 3, T, H, W)."""
        t = video.shape[2]
        if t > self.frames:
            raise ValueError(f"clip of {t} frames, but the encoder has {self.frames} temporal positions")
        x = self.conv1(video).flatten(3).permute(0, 2, 3, 1)  # B, T, N, width
        temporal = self.temporal_positional_embedding[0]
        temporal = temporal.mean(0, keepdim=True) if t == 1 else temporal[:t]
        x = x + self.positional_embedding[1:] + temporal[:, None]
        return x.flatten(1, 2)

    @staticmethod
    def keep_random(x: Tensor, ratio: float) -> Tensor:
        """Drop `ratio` of the patch tokens of each sample at random (ViCLIP's training-time masking)."""
        b, n, w = x.shape
        keep = max(1, n - int(ratio * n))
        order = torch.rand(b, n, device=x.device).argsort(dim=1)[:, :keep]
        return x.gather(1, order[..., None].expand(b, keep, w))

    def forward(self, video: Tensor, mask_ratio: float = 0.0) -> tuple[Tensor, Tensor]:
        """(pooled, projected): the class token after ln_post (width) and after `proj` (output_dim)."""
        x = self.tokens(video)
        if mask_ratio > 0:
            x = self.keep_random(x, mask_ratio)
        cls = (self.class_embedding + self.positional_embedding[0]).expand(len(x), 1, -1)
        x = self.transformer(self.ln_pre(torch.cat([cls.to(x.dtype), x], dim=1)))
        pooled = self.ln_post(x[:, 0])
        return pooled, pooled @ self.proj
