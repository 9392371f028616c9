"""MVT, the multi-view transformer of RVT-2 as ARP configures it (one per stage): three rendered views and
the instruction in, a (B, 3, 128, 16, 16) feature map out.

Each 10-channel view is patchified (14 x 14) to 64 channels, the proprioception embedded to 64 and tiled,
giving 128-d tokens with a learned positional embedding; CLIP token features of the instruction are
projected to 128; everything is widened to 512. The first half of the layers attend within each view, the
second half jointly over the language and all views. Attention: 8 heads x 64 with dropout on the attention
weights, pre-LayerNorm, GEGLU feed-forward (x4, no dropout). Initialisation as ARP's: Kaiming (leaky ReLU)
for the conv and dense input blocks, Xavier for the widening and narrowing layers, a unit-variance
positional embedding, PyTorch's defaults elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.models.execution.renderer import CHANNELS


@dataclass
class MVTSize:
    image: int = 224
    patch: int = 14
    channels: int = 64  # per-view patch channels (and proprioception channels)
    width: int = 512
    depth: int = 8  # the first half attend within each view
    heads: int = 8
    head_dim: int = 64
    language: int = 512  # CLIP RN50 token feature width
    proprio: int = 3
    dropout: float = 0.1


class GEGLU(nn.Module):
    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.proj, self.out = nn.Linear(dim, dim * mult * 2), nn.Linear(dim * mult, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return self.out(a * F.gelu(gate))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, inner = heads, heads * head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.out = nn.Linear(inner, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        q = self.to_q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = self.to_kv(x).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(2))


class Block(nn.Module):
    def __init__(self, s: MVTSize):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(s.width), nn.LayerNorm(s.width)
        self.attn = Attention(s.width, s.heads, s.head_dim, s.dropout)
        self.ff = GEGLU(s.width, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


SLOPE = 0.02  # of the leaky ReLUs


def kaiming(layer: nn.Conv2d | nn.Linear) -> nn.Conv2d | nn.Linear:
    nn.init.kaiming_uniform_(layer.weight, a=SLOPE, nonlinearity="leaky_relu")
    nn.init.zeros_(layer.bias)
    return layer


def xavier(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def conv_block(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(kaiming(nn.Conv2d(cin, cout, kernel, stride)), nn.GroupNorm(4, cout), nn.LeakyReLU(SLOPE))


def dense_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(kaiming(nn.Linear(cin, cout)), nn.GroupNorm(4, cout), nn.LeakyReLU(SLOPE))


class MVT(nn.Module):
    def __init__(self, s: MVTSize):
        super().__init__()
        self.s = s
        self.grid = s.image // s.patch
        tokens = 3 * self.grid * self.grid
        self.patchify = conv_block(CHANNELS, s.channels, s.patch, s.patch)
        self.proprio = dense_block(s.proprio, s.channels)
        self.position = nn.Parameter(torch.randn(1, tokens, 2 * s.channels))
        self.language = dense_block(s.language, 2 * s.channels)
        self.widen = xavier(nn.Linear(2 * s.channels, s.width))
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.depth))
        self.narrow = xavier(nn.Linear(s.width, 2 * s.channels))

    def forward(self, views: Tensor, proprio: Tensor, language: Tensor) -> Tensor:
        """views (B, 3, 10, S, S), proprio (B, 3), language (B, L, 512) -> (B, 3, 128, S/14, S/14)."""
        b, g = views.shape[0], self.grid
        x = self.patchify(views.flatten(0, 1)).view(b, 3, -1, g, g)
        p = self.proprio(proprio)[:, None, :, None, None].expand(-1, 3, -1, g, g)
        x = torch.cat([x, p], 2).permute(0, 1, 3, 4, 2).reshape(b, 3 * g * g, -1) + self.position
        x = self.widen(x)
        lang = self.widen(self.language(language.flatten(0, 1)).view(b, language.shape[1], -1))
        half = len(self.blocks) // 2
        for block in self.blocks[:half]:  # within each view
            x = block(x.view(b * 3, g * g, -1)).view(b, 3 * g * g, -1)
        x = torch.cat([lang, x], 1)
        for block in self.blocks[half:]:  # language and all views together
            x = block(x)
        x = self.narrow(x[:, lang.shape[1] :])
        return x.view(b, 3, g, g, -1).permute(0, 1, 4, 2, 3)
