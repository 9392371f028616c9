"""The ARP policy head: screen points by AdaLN cross blocks and a convex upsampler, then a causal sequence.

Screen points: one query token per view and stage runs through the cross blocks (each conditioned, by
adaptive LayerNorm, on cross-attention to that view's 256 feature tokens); its output multiplies the view's
feature map and a convex upsampler (RAFT style) turns the product into 224 x 224 heatmap logits.

Actions: a causal transformer over 6 prompt tokens (per view: the stage-2 feature at the chosen point and
the max-pooled map), then rot-x, rot-y, rot-z (72 bins each), grip and collision, each token predicting the
next; teacher forcing in training, greedy decoding at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.models.execution.geometry import BINS

PROMPT = 6
SEQUENCE = PROMPT + 4  # inputs: prompts, rot-x, rot-y, rot-z, grip; the collision is only predicted


def mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                         nn.Linear(hidden, dim))


class CrossBlock(nn.Module):
    """AdaLN block: shift, scale and gate come from cross-attention of the tokens to a view's features."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.norm_c = nn.LayerNorm(dim)
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = mlp(dim, hidden, dropout)
        self.modulation = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.modulation.weight)  # every block starts as the identity
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        q = self.norm_c(x)
        c = self.cross(q, context, context, need_weights=False)[0]
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(c)).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attn(h, h, h, need_weights=False)[0]
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class SelfBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = mlp(dim, hidden, dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).triu(1)
        x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ConvexUpsample(nn.Module):
    """Low-resolution logits upsampled `ratio` times as learnt convex combinations of 3 x 3 neighbours."""

    def __init__(self, dim: int, hidden: int, ratio: int):
        super().__init__()
        self.ratio = ratio
        self.logits = nn.Sequential(nn.Conv2d(dim, hidden, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(hidden, 1, 3, padding=1))
        self.mask = nn.Sequential(nn.Conv2d(dim, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, ratio * ratio * 9, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(N, dim, g, g) -> (N, g * ratio, g * ratio)."""
        n, _, g, _ = x.shape
        r = self.ratio
        low = self.logits(x)
        mask = (0.1 * self.mask(x)).view(n, 9, r, r, g, g).softmax(1)
        neighbours = F.unfold(low, 3, padding=1).view(n, 9, 1, 1, g, g)
        up = (mask * neighbours).sum(1)  # n, r, r, g, g
        return up.permute(0, 3, 1, 4, 2).reshape(n, g * r, g * r)


class ARPHead(nn.Module):
    def __init__(self, dim: int = 128, heads: int = 8, hidden: int = 512, cross_layers: int = 4,
                 self_layers: int = 4, upsample: int = 160, ratio: int = 14, dropout: float = 0.1):
        super().__init__()
        self.point_query = nn.Parameter(torch.randn(2, 3, dim) * 0.02)  # per stage and view
        self.cross = nn.ModuleList(CrossBlock(dim, heads, hidden, dropout) for _ in range(cross_layers))
        self.point_norm = nn.LayerNorm(dim)
        self.upsample = nn.ModuleList(ConvexUpsample(dim, upsample, ratio) for _ in range(2))
        self.rotation = nn.ModuleList(nn.Embedding(BINS, dim) for _ in range(3))
        self.grip = nn.Embedding(2, dim)
        self.position = nn.Parameter(torch.randn(SEQUENCE, dim) * 0.02)
        self.blocks = nn.ModuleList(SelfBlock(dim, heads, hidden, dropout) for _ in range(self_layers))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList([*(nn.Linear(dim, BINS) for _ in range(3)), nn.Linear(dim, 2), nn.Linear(dim, 2)])

    def heatmaps(self, maps: Tensor, stage: int) -> tuple[Tensor, Tensor]:
        """(B, 3, C, g, g) feature maps -> heatmap logits (B, 3, S, S) and the point tokens (B, 3, C)."""
        b, v, c, g, _ = maps.shape
        tokens = maps.flatten(3).transpose(2, 3).reshape(b * v, g * g, c)
        q = self.point_query[stage].expand(b, -1, -1).reshape(b * v, 1, c)
        for block in self.cross:
            q = block(q, tokens)
        q = q.view(b, v, c)
        product = maps * self.point_norm(q)[..., None, None]
        logits = self.upsample[stage](product.flatten(0, 1))
        return logits.view(b, v, *logits.shape[-2:]), q

    @staticmethod
    def prompts(maps: Tensor, pixels: Tensor, image: int) -> Tensor:
        """6 prompt tokens: each view's feature at `pixels` (B, 3, 2) and its max-pooled feature map."""
        b, v, c, g, _ = maps.shape
        grid = (pixels / image * 2 - 1).view(b * v, 1, 1, 2)  # align_corners=False pixel convention
        at_point = F.grid_sample(maps.flatten(0, 1), grid, align_corners=False).view(b, v, c)
        return torch.cat([at_point, maps.flatten(3).amax(-1)], 1)

    def sequence(self, prompts: Tensor, rotation: Tensor | None, grip: Tensor | None) -> Tensor:
        """Last-block outputs (B, T, C) for the prompts followed by the known rotation bins and grip."""
        x = [prompts]
        if rotation is not None:
            x += [self.rotation[i](rotation[:, i : i + 1]) for i in range(rotation.shape[1])]
        if grip is not None:
            x.append(self.grip(grip[:, None]))
        x = torch.cat(x, 1)
        x = x + self.position[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return x

    def logits(self, hidden: Tensor) -> list[Tensor]:
        """Predictions from positions PROMPT-1 .. : rot-x, rot-y, rot-z, grip, collision (as far as given)."""
        out = self.norm(hidden[:, PROMPT - 1 :])
        return [head(out[:, i]) for i, head in enumerate(self.heads[: out.shape[1]])]

    @torch.no_grad()
    def decode(self, prompts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Greedy decoding: rotation bins (B, 3), grip (B,), collision (B,) and the last-block outputs."""
        rotation = prompts.new_zeros(prompts.shape[0], 0, dtype=torch.long)
        for axis in range(3):
            nxt = self.logits(self.sequence(prompts, rotation, None))[axis].argmax(-1)
            rotation = torch.cat([rotation, nxt[:, None]], 1)
        grip = self.logits(self.sequence(prompts, rotation, None))[3].argmax(-1)
        hidden = self.sequence(prompts, rotation, grip)
        return rotation, grip, self.logits(hidden)[4].argmax(-1), hidden
