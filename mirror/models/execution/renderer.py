"""Orthographic point-cloud rendering of the scene into three virtual views (RVT-2), in pure PyTorch.

Points are mapped from the scene bounds to the cube [-1, 1]^3 (outside points dropped) and projected to
224 x 224 top, front and right views. Each pixel keeps its nearest point (a z-buffer by scatter), then takes
the nearest point among itself and its 4 direct neighbours (a splat of ~1.34 px). Channels: RGB, the point's
cube xyz, its depth along the view axis (-1 where empty) and 3 pixel-location channels (view, row, column
in [-1, 1]): 10 in all. Stage 2 re-renders zoomed around a point. Batched; runs on CPU and GPU.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mirror.data.rlbench.format import SCENE_BOUNDS

VIEWS = ("top", "front", "right")
CHANNELS = 10


def to_cube(points: Tensor, bounds=SCENE_BOUNDS) -> Tensor:
    """World metres -> the cube [-1, 1]^3 spanned by the scene bounds."""
    lo = points.new_tensor(bounds[:3])
    hi = points.new_tensor(bounds[3:])
    return 2 * (points - lo) / (hi - lo) - 1


def from_cube(cube: Tensor, bounds=SCENE_BOUNDS) -> Tensor:
    lo = cube.new_tensor(bounds[:3])
    hi = cube.new_tensor(bounds[3:])
    return (cube + 1) / 2 * (hi - lo) + lo


def project(cube: Tensor, size: int = 224) -> Tensor:
    """Cube points (..., 3) -> (..., 3 views, 3): column u, row v and depth d of each view."""
    x, y, z = cube.unbind(-1)
    half = size / 2
    top = torch.stack([half * (x + 1), half * (1 - y), 1 - z], -1)
    front = torch.stack([half * (y + 1), half * (1 - z), 1 - x], -1)
    right = torch.stack([half * (1 - x), half * (1 - z), 1 - y], -1)
    return torch.stack([top, front, right], -2)


def unproject(view: int, u: Tensor, v: Tensor, d: Tensor, size: int = 224) -> Tensor:
    """Inverse of `project` for one view: pixel coordinates and depth -> cube points."""
    half = size / 2
    a, b = u / half - 1, 1 - v / half
    if view == 0:
        return torch.stack([a, b, 1 - d], -1)
    if view == 1:
        return torch.stack([1 - d, a, b], -1)
    return torch.stack([-a, 1 - d, b], -1)


def pixel_location(size: int, device=None) -> Tensor:
    """(3 views, 3, size, size): view index, row and column, each scaled to [-1, 1]."""
    lin = torch.linspace(-1, 1, size, device=device)
    loc = torch.empty(len(VIEWS), 3, size, size, device=device)
    loc[:, 0] = torch.linspace(-1, 1, len(VIEWS), device=device)[:, None, None]
    loc[:, 1] = lin[None, :, None]
    loc[:, 2] = lin[None, None, :]
    return loc


def render(points: Tensor, colours: Tensor, size: int = 224, center: Tensor | None = None, zoom: float = 1.0,
           valid: Tensor | None = None) -> Tensor:
    """Render (B, N, 3) cube points with (B, N, 3) colours (already scaled) to (B, 3 views, 10, size, size).

    With `center` (B, 3 cube coordinates) the scene is first magnified `zoom` times about it (stage 2).
    `valid` (B, N) excludes points (e.g. padding) before anything else.
    """
    b, n, _ = points.shape
    cube = points if center is None else (points - center[:, None]) * zoom
    keep = (cube.abs() <= 1).all(-1)
    if valid is not None:
        keep &= valid
    uvd = project(cube, size)  # B, N, 3 views, 3
    col = uvd[..., 0].floor().clamp(0, size - 1).long()
    row = uvd[..., 1].floor().clamp(0, size - 1).long()
    depth = uvd[..., 2]
    views = torch.arange(len(VIEWS), device=points.device)
    batch = torch.arange(b, device=points.device)[:, None, None]
    pixel = ((batch * len(VIEWS) + views) * size + row) * size + col  # B, N, 3 views
    total = b * len(VIEWS) * size * size
    keep3 = keep[..., None].expand_as(pixel)
    pix, dep = pixel[keep3], depth[keep3]
    point_id = (torch.arange(b, device=points.device)[:, None] * n + torch.arange(n, device=points.device))
    point_id = point_id[..., None].expand_as(pixel)[keep3]
    nearest = torch.full((total,), float("inf"), device=points.device).scatter_reduce(0, pix, dep, "amin")
    winner = torch.full((total,), -1, dtype=torch.long, device=points.device)
    on_top = dep == nearest[pix]
    winner.scatter_reduce_(0, pix[on_top], point_id[on_top], "amax")  # ties: the larger point index
    winner, nearest = winner.view(b, len(VIEWS), size, size), nearest.view(b, len(VIEWS), size, size)
    winner, nearest = splat(winner, nearest)
    return features(cube, colours, winner, nearest)


def splat(winner: Tensor, depth: Tensor) -> tuple[Tensor, Tensor]:
    """Each pixel takes the nearest point among itself and its 4 direct neighbours."""
    pad_w = torch.nn.functional.pad(winner, (1, 1, 1, 1), value=-1)
    pad_d = torch.nn.functional.pad(depth, (1, 1, 1, 1), value=float("inf"))
    h, w = depth.shape[-2:]
    shifts = [(1, 1), (0, 1), (2, 1), (1, 0), (1, 2)]  # self first: it wins ties
    ws = torch.stack([pad_w[..., r : r + h, c : c + w] for r, c in shifts])
    ds = torch.stack([pad_d[..., r : r + h, c : c + w] for r, c in shifts])
    best = ds.argmin(0, keepdim=True)
    return ws.gather(0, best)[0], ds.gather(0, best)[0]


def features(cube: Tensor, colours: Tensor, winner: Tensor, depth: Tensor) -> Tensor:
    """The 10 channels of each pixel from its winning point (zeros and depth -1 where empty)."""
    b, n, _ = cube.shape
    empty = winner < 0
    index = winner.clamp(min=0).flatten(1) - torch.arange(b, device=winner.device)[:, None] * n
    index = index.clamp(min=0)[..., None].expand(-1, -1, 3)
    rgb, xyz = colours.float().gather(1, index), cube.gather(1, index)
    shape = (b, *winner.shape[1:], 3)
    rgb, xyz = rgb.view(shape), xyz.view(shape)
    out = torch.cat([rgb, xyz, depth[..., None]], -1).permute(0, 1, 4, 2, 3)  # B, V, 7, H, W
    out = out.masked_fill(empty[:, :, None], 0.0)
    out[:, :, 6] = out[:, :, 6].masked_fill(empty, -1.0)
    loc = pixel_location(winner.shape[-1], winner.device).expand(b, -1, -1, -1, -1)
    return torch.cat([out, loc], 2)
