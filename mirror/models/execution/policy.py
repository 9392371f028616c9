"""The ARP policy head: mlzxy/arp's chunking causal transformer as its RLBench model configures it.

Tokens, in ARP's type order: the prompt features, the stage-1 and stage-2 screen points, rot-x, rot-y, rot-z
(72 bins each), grip and collision. Each token has two streams (ARP trains both at once): its content,
embedded from its value (prompt features as given, rotation bins by a fixed sine/cosine code, grip and
collision by tables), and a query, the sum of a chunk, a type and a position embedding. Content attends
causally to the content before it; a token's query attends to the content before it and to itself, and
predicts that token. Grip and collision never attend to the rotation tokens. Teacher forcing in training,
greedy decoding at inference; the two agree.

Screen points: a point's query runs through the 4 cross blocks alone (each conditioned, by adaptive LayerNorm
on a LayerNorm of its cross-attention to one view's 256 feature tokens); its output multiplies the view's
feature map and a convex upsampler (RAFT style) turns the product into 224 x 224 heatmap logits. The 4 self
blocks run the action sequence: 6 prompt tokens (per view: the stage-2 feature at the chosen point and the
max-pooled map), then rot-x, rot-y, rot-z, grip and collision. Dropout 0.1 on embeddings, attention weights,
attention outputs and the MLP; initialisation as ARP's (Xavier for linear layers, N(0, 0.02) for tables).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.models.execution.geometry import BINS, sample

PROMPT, POINT1, POINT2, ROT_X, ROT_Y, ROT_Z, GRIP, COLLISION = range(8)  # token types, in ARP's order
KINDS = 8
PROMPTS = 6
TYPES = (PROMPT,) * PROMPTS + (ROT_X, ROT_Y, ROT_Z, GRIP, COLLISION)  # the action sequence
POSITIONS = 17  # ARP's position table: 6 + 6 + 3 + 2
CHUNKS = 2  # ARP's chunk table; every chunk here is one token, so only its first row is used
BLOCKED = ((GRIP, ROT_X), (GRIP, ROT_Y), (GRIP, ROT_Z), (COLLISION, ROT_X), (COLLISION, ROT_Y), (COLLISION, ROT_Z))


def layer_norm(dim: int, affine: bool = True) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6, elementwise_affine=affine)


def mlp(dim: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                         nn.Linear(hidden, dim), nn.Dropout(dropout))


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout: float) -> Tensor:
    """(B, heads, T, d) queries against keys and values; `mask` (T, S) True where attention is allowed."""
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return y.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        return self.drop(self.out(attend(q, k, v, mask, self.dropout if self.training else 0.0)))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        q = self.q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = self.kv(context).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4)
        return self.drop(self.out(attend(q, k, v, None, self.dropout if self.training else 0.0)))


class CrossBlock(nn.Module):
    """AdaLN block: shift, scale and gate come from the LayerNorm of cross-attention to a view's features."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.norm_c = layer_norm(dim)
        self.cross = CrossAttention(dim, heads, dropout)
        self.norm_ada = layer_norm(dim, affine=False)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.norm1, self.norm2 = layer_norm(dim, affine=False), layer_norm(dim, affine=False)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = mlp(dim, hidden, dropout)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        c = self.norm_ada(self.cross(self.norm_c(x), context))
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=-1)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class SelfBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = layer_norm(dim), layer_norm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.mlp = mlp(dim, hidden, dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
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
        last = self.mask[-1]  # its logits are scaled by 0.1: scaling its weights instead saves a pass
        mask = F.conv2d(self.mask[:-1](x), 0.1 * last.weight, 0.1 * last.bias)
        mask = mask.permute(0, 2, 3, 1).reshape(n, g * g, 9, r * r).softmax(2)  # free for channels-last maps
        neighbours = F.unfold(low, 3, padding=1).view(n, 9, g * g).transpose(1, 2)[..., None]
        up = (mask * neighbours).sum(2)  # n, g x g, r x r
        return up.view(n, g, g, r, r).transpose(2, 3).reshape(n, g * r, g * r)


def sine_frequencies(dim: int) -> Tensor:
    """The dim / 2 frequencies of the fixed rotation-bin code: bin b -> [sin(b f), cos(b f)]."""
    return torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))


def sequence_mask(length: int, queries: Sequence[int], device: torch.device) -> Tensor:
    """Who attends to whom in [content at positions 0..length-1, one query per position in `queries`]
    (True: allowed): every token attends to the content at earlier positions and to itself."""
    positions = torch.cat([torch.arange(length, device=device),
                           torch.tensor(queries, dtype=torch.long, device=device)])
    total = len(positions)
    content = torch.arange(total, device=device) < length
    mask = (positions[:, None] > positions[None, :]) & content[None, :]
    mask |= torch.eye(total, dtype=torch.bool, device=device)
    kind = torch.tensor(TYPES, device=device)[positions]
    for source, target in BLOCKED:
        mask &= ~((kind[:, None] == source) & (kind[None, :] == target))
    return mask


class ARPHead(nn.Module):
    def __init__(self, dim: int = 128, heads: int = 8, hidden: int = 512, cross_layers: int = 4,
                 self_layers: int = 4, upsample: int = 160, ratio: int = 14, dropout: float = 0.1):
        super().__init__()
        self.chunk_embedding = nn.Embedding(CHUNKS, dim)
        self.type_embedding = nn.Embedding(KINDS, dim)
        self.position = nn.Embedding(POSITIONS, dim)
        self.grip_embedding, self.collision_embedding = nn.Embedding(2, dim), nn.Embedding(2, dim)
        self.drop = nn.Dropout(dropout)
        self.cross = nn.ModuleList(CrossBlock(dim, heads, hidden, dropout) for _ in range(cross_layers))
        self.blocks = nn.ModuleList(SelfBlock(dim, heads, hidden, dropout) for _ in range(self_layers))
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleList([*(nn.Linear(dim, BINS) for _ in range(3)), nn.Linear(dim, 2), nn.Linear(dim, 2)])
        self.register_buffer("frequency", sine_frequencies(dim), persistent=False)
        self.apply(_arp_init)
        for block in self.cross:  # every cross block starts as the identity
            nn.init.zeros_(block.modulation[1].weight)
            nn.init.zeros_(block.modulation[1].bias)
        self.upsample = nn.ModuleList(ConvexUpsample(dim, upsample, ratio) for _ in range(2))

    def query(self, kinds: Tensor, positions: Tensor) -> Tensor:
        """Query embeddings of tokens of types `kinds` at `positions` (both (Q,)): (Q, dim)."""
        return self.chunk_embedding.weight[0] + self.type_embedding(kinds) + self.position(positions)

    def heatmaps(self, maps: Tensor, stage: int) -> tuple[Tensor, Tensor]:
        """(B, 3, C, g, g) feature maps -> heatmap logits (B, 3, S, S) and the point tokens (B, 3, C)."""
        b, v, c, g, _ = maps.shape
        tokens = maps.flatten(3).transpose(2, 3).reshape(b * v, g * g, c)
        at = torch.zeros(1, dtype=torch.long, device=maps.device)
        q = self.drop(self.query(at + POINT1 + stage, at).expand(b * v, 1, c))
        for block in self.cross:
            q = block(q, tokens)
        product = maps.flatten(0, 1) * self.norm(q).view(b * v, c, 1, 1)
        logits = self.upsample[stage](product)
        return logits.view(b, v, *logits.shape[-2:]), q.view(b, v, c)

    @staticmethod
    def prompts(maps: Tensor, pixels: Tensor, patch: int) -> Tensor:
        """6 prompt tokens: each view's feature at `pixels` (B, 3, 2) and its max-pooled feature map."""
        b, v, c, g, _ = maps.shape
        at_point = sample(maps.flatten(0, 1), pixels.reshape(b * v, 1, 2) / patch).view(b, v, c)
        return torch.cat([at_point, maps.flatten(3).amax(-1)], 1)

    def content(self, prompts: Tensor, values: Sequence[Tensor]) -> Tensor:
        """Content embeddings of the prompts followed by the known values (rot-x, rot-y, rot-z bins, grip,
        collision, as far as given, each (B,)): (B, 6 + len(values), dim)."""
        x = [prompts]
        for value in values[:3]:
            angle = value.float()[:, None] * self.frequency
            x.append(torch.cat([angle.sin(), angle.cos()], -1)[:, None])
        if len(values) > 3:
            x.append(self.grip_embedding(values[3])[:, None])
        if len(values) > 4:
            x.append(self.collision_embedding(values[4])[:, None])
        return torch.cat(x, 1)

    def sequence(self, prompts: Tensor, values: Sequence[Tensor], queries: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Last self-block outputs of the content (B, T, dim) and of one query per position in `queries`
        (B, Q, dim); a query at position p needs the content of every position before p."""
        content = self.content(prompts, values)
        b, t, c = content.shape
        at = torch.tensor(queries, dtype=torch.long, device=content.device)
        kinds = torch.tensor(TYPES, device=content.device)[at]
        x = torch.cat([content + self.position.weight[:t], self.query(kinds, at).expand(b, -1, -1)], 1)
        x = self.drop(x)
        mask = sequence_mask(t, queries, content.device)
        for block in self.blocks:
            x = block(x, mask)
        return x[:, :t], x[:, t:]

    def logits(self, queries: Tensor, first: int = PROMPTS) -> list[Tensor]:
        """Predictions from consecutive query outputs (B, Q, dim) starting at position `first`."""
        out = self.norm(queries)
        return [self.heads[first - PROMPTS + i](out[:, i]) for i in range(out.shape[1])]

    @torch.no_grad()
    def decode(self, prompts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Greedy decoding: rotation bins (B, 3), grip (B,), collision (B,) and the content outputs."""
        values: list[Tensor] = []
        for position in range(PROMPTS, len(TYPES)):
            _, query = self.sequence(prompts, values, [position])
            values.append(self.logits(query, position)[0].argmax(-1))
        content, _ = self.sequence(prompts, values, [])
        return torch.stack(values[:3], 1), values[3], values[4], content


def _arp_init(module: nn.Module) -> None:
    """ARP's initialisation of its policy: Xavier linear layers with zero bias, N(0, 0.02) tables."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
