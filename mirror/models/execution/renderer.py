"""Orthographic point-cloud rendering into RVT-2's three virtual views, in pure PyTorch (CPU and GPU).

Follows RVT's point renderer (rvt/libs/point-renderer, which ARP renders with). Cameras look at the origin of
the cube [-1, 1]^3: top (from z = 1), front (from x = 1) and right (from y = 0.5, where RVT places it). A point
is drawn in a view when it projects inside the image, whatever its depth. Per pixel the nearest point wins:
depth is quantised to 1/1000 (truncated; negative depths saturate to 0) and ties go to the lower point index.
Then each pixel takes the nearest point among the pixels whose splat covers it (RVT's radius of 0.012 cube
units: at 224 px itself and its 4 direct neighbours; among equal depths the last in RVT's loop wins, at 224 px
the last of left, up, self, down, right; points at depth 0 never spread).

Channels: the point's cube xyz divided by the cloud's largest magnitude, its RGB, its depth less the view's
mean occupied depth (-1 where empty), and 3 pixel-location channels (view, row, column in [-1, 1]): 10 in all.

One packed int64 key per point and view, quantised depth in the high bits and point index in the low, so a
single `scatter_reduce(amin)` is the z-buffer (points outside the image go to a dummy slot) and the splat is a
running minimum over shifted copies of the key map.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

VIEWS = ("top", "front", "right")
CHANNELS = 10
DEPTH_STEPS = 1000  # RVT's kernel orders depths in thousandths
SPLAT_RADIUS = 0.012  # RVT's splat radius in cube units: 1.344 px at 224 px, none below 167 px
# A key packs a point's quantised depth (bits 40-62), the splat's priority (32-39) and its index (0-31).
DEPTH_SHIFT, PRIORITY_SHIFT = 40, 32
LOW = (1 << PRIORITY_SHIFT) - 1
PRIORITY = ((1 << DEPTH_SHIFT) - 1) ^ LOW
EMPTY = torch.iinfo(torch.int64).max & ~PRIORITY  # above every real key, with or without priority bits


def coordinates(cube: Tensor, size: int = 224) -> tuple[Tensor, Tensor, Tensor]:
    """Cube points (..., 3) -> column u, row v and depth d, each (..., 3 views), written in place."""
    x, y, z = cube.unbind(-1)
    half = size / 2  # pixel = half * camera coordinate + half, as RVT's intrinsics compute it
    hx, hy, hz = (cube * half).unbind(-1)
    u, v, d = (cube.new_empty(cube.shape) for _ in range(3))
    torch.add(hx, half, out=u[..., 0]), torch.add(hy, half, out=u[..., 1]), torch.sub(half, hx, out=u[..., 2])
    torch.sub(half, hy, out=v[..., 0]), torch.sub(half, hz, out=v[..., 1]), v[..., 2].copy_(v[..., 1])
    torch.sub(1, z, out=d[..., 0]), torch.sub(1, x, out=d[..., 1]), torch.sub(0.5, y, out=d[..., 2])
    return u, v, d


def project(cube: Tensor, size: int = 224) -> Tensor:
    """Cube points (..., 3) -> (..., 3 views, 3): column u, row v and depth d of each view."""
    return torch.stack(coordinates(cube, size), -1)


@lru_cache(maxsize=8)
def pixel_location(size: int, device: torch.device) -> Tensor:
    """(3 views, 3, size, size): view index, row and column, each scaled to [-1, 1] (built once per size)."""
    lin = torch.linspace(-1, 1, size, device=device)
    loc = torch.empty(len(VIEWS), 3, size, size, device=device)
    loc[:, 0] = torch.linspace(-1, 1, len(VIEWS), device=device)[:, None, None]
    loc[:, 1] = lin[None, :, None]
    loc[:, 2] = lin[None, None, :]
    return loc


@torch.no_grad()
def render(cube: Tensor, colours: Tensor, valid: Tensor, size: int = 224) -> Tensor:
    """(B, N, 3) cube points with (B, N, 3) colours; `valid` (B, N) marks the points that exist.
    Returns (B, 3 views, 10, size, size)."""
    b, n, _ = cube.shape
    views = len(VIEWS)
    keys = winners(cube, valid, size)
    empty = keys == EMPTY
    scale = torch.where(valid, cube.abs().amax(-1), 0).amax(1).clamp(min=1e-6)
    table = cube.new_zeros(6, b * n + 1)  # features by channel; the last column is what empty pixels show
    torch.div(cube, scale[:, None, None], out=table[:3, :-1].T.view(b, n, 3))
    table[3:, :-1] = colours.reshape(b * n, 3).T
    # empty keys carry all index bits, so they land past the points: on the empty column
    point = (keys & LOW).add_(torch.arange(b, device=cube.device).view(b, 1, 1, 1) * n).clamp_(max=b * n)
    point = point.view(b, views, 1, size * size).expand(-1, -1, 6, -1)
    out = cube.new_empty(b, views, CHANNELS, size, size)
    out.view(b, views, CHANNELS, size * size)[:, :, :6] = table.expand(b, views, -1, -1).gather(3, point)
    metres = (keys >> DEPTH_SHIFT).float() * (1 / DEPTH_STEPS)
    metres.masked_fill_(empty, 0)
    mean = metres.sum((-2, -1)) / (~empty).sum((-2, -1)).clamp(min=1)
    torch.sub(metres, mean[..., None, None], out=out[:, :, 6])
    out[:, :, 6].masked_fill_(empty, -1.0)
    out[:, :, 7:] = pixel_location(size, cube.device)
    return out


def winners(cube: Tensor, valid: Tensor, size: int) -> Tensor:
    """(B, 3, S, S) keys of the point each pixel shows after the splat (EMPTY where none)."""
    b, n, _ = cube.shape
    views = len(VIEWS)
    u, v, d = coordinates(cube, size)
    column, row = u.floor_(), v.floor_()  # whole pixels, exact in float32 up to 2^24
    inside = (torch.minimum(column, row) >= 0) & (torch.maximum(column, row) < size) & valid[..., None]
    offset = torch.arange(b * views, device=cube.device).view(b, 1, views) * (size * size)
    slot = (row * size).add_(column).long().add_(offset)
    dummy = b * views * size * size
    slot.masked_fill_(~inside, dummy)
    keys = d.mul_(DEPTH_STEPS).clamp_(0, (1 << (63 - DEPTH_SHIFT)) - 2).long().bitwise_left_shift_(DEPTH_SHIFT)
    keys |= torch.arange(n, device=cube.device).view(1, n, 1)
    zbuffer = torch.full((dummy + 1,), EMPTY, dtype=torch.long, device=cube.device)
    zbuffer.scatter_reduce_(0, slot.flatten(), keys.flatten(), "amin")
    return splat(zbuffer[:dummy].view(b, views, size, size))


@lru_cache(maxsize=8)
def splat_offsets(size: int) -> tuple[tuple[int, int], ...]:
    """(row, column) offsets of the pixels whose splat covers a pixel, in RVT's loop order (columns outer)."""
    radius = SPLAT_RADIUS * size / 2
    reach = min(math.ceil(radius), 25)  # RVT caps its kernel at 51 x 51
    offsets = tuple((dr, dc) for dc in range(-reach, reach + 1) for dr in range(-reach, reach + 1)
                    if math.hypot(dr, dc) < radius)
    if len(offsets) > 1 << (DEPTH_SHIFT - PRIORITY_SHIFT):
        raise ValueError(f"image size {size}: too many splat candidates for the key's priority bits")
    return offsets


def splat(keys: Tensor) -> Tensor:
    """RVT's splat on z-buffer keys: each pixel takes, among the pixels whose splat covers it that hold a point
    at depth > 0, the nearest, ties to the last in `splat_offsets`; a pixel holding a depth-0 point keeps it."""
    h, w = keys.shape[-2:]
    offsets = splat_offsets(w)
    reach = max(abs(d) for offset in offsets for d in offset)
    at_zero = keys < (1 << DEPTH_SHIFT)  # a point at depth 0: it stays and never spreads
    padded = torch.full((*keys.shape[:-2], h + 2 * reach, w + 2 * reach), EMPTY, dtype=keys.dtype,
                        device=keys.device)
    torch.where(at_zero, padded.new_tensor(EMPTY), keys, out=padded[..., reach : reach + h, reach : reach + w])
    best, candidate = torch.empty_like(keys), torch.empty_like(keys)
    for rank, (dr, dc) in enumerate(offsets):  # the priority bits make the later of equal depths smaller
        torch.bitwise_or(padded[..., reach + dr : reach + dr + h, reach + dc : reach + dc + w],
                         (len(offsets) - 1 - rank) << PRIORITY_SHIFT, out=candidate if rank else best)
        if rank:
            torch.minimum(best, candidate, out=best)
    best &= ~PRIORITY
    return torch.where(at_zero, keys, best)
