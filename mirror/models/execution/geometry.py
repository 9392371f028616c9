"""Scene placement, rotations, discretisation and heatmap geometry of the ARP policy, batched in torch.

The scene bounds (x0, y0, z0, x1, y1, z1 in metres) map to the cube [-1, 1]^3 as ARP places them: centred on
the bounds' middle and scaled by 2 over their largest extent. Quaternions are (x, y, z, w) as RLBench stores
them; Euler angles are extrinsic x-y-z (scipy's 'xyz'), split into 72 bins of 5 degrees; a decoded quaternion
is made canonical (w >= 0). Heatmap pixel i sits at coordinate i (ARP's convention), while the renderer draws
coordinates [i, i + 1) into pixel i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mirror.models.execution.renderer import project

BINS = 72
BIN_DEGREES = 360 / BINS


def _placement(bounds: Sequence[float]) -> tuple[list[float], float]:
    """The middle of the bounds and the scale that maps their largest extent onto [-1, 1]."""
    lo, hi = bounds[:3], bounds[3:]
    return [(a + b) / 2 for a, b in zip(lo, hi, strict=True)], 2 / max(b - a for a, b in zip(lo, hi, strict=True))


def to_cube(points: Tensor, bounds: Sequence[float]) -> Tensor:
    """World metres -> cube coordinates."""
    middle, scale = _placement(bounds)
    return (points - points.new_tensor(middle)) * scale


def from_cube(cube: Tensor, bounds: Sequence[float]) -> Tensor:
    middle, scale = _placement(bounds)
    return cube / scale + cube.new_tensor(middle)


def in_bounds(points: Tensor, bounds: Sequence[float]) -> Tensor:
    """(...) True where a (..., 3) world point lies inside the bounds, edges included (NaN is outside)."""
    return ((points >= points.new_tensor(bounds[:3])) & (points <= points.new_tensor(bounds[3:]))).all(-1)


def compact(valid: Tensor, *clouds: Tensor) -> tuple[Tensor, ...]:
    """Each sample's valid points moved to the front, in their order, and every cloud (B, N, ...) cut to the
    batch's largest valid count: renders are unchanged (invalid points are never drawn) and cost less."""
    keep = max(1, int(valid.sum(1).max()))  # one (invalid) point when none is valid: renders stay defined
    order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :keep]
    picked = [c.gather(1, order.view(*order.shape, *(1,) * (c.dim() - 2)).expand(-1, -1, *c.shape[2:]))
              for c in clouds]
    return valid.gather(1, order), *picked


def quat_to_matrix(q: Tensor) -> Tensor:
    """(..., 4) xyzw unit quaternions -> (..., 3, 3) rotation matrices."""
    x, y, z, w = torch.nn.functional.normalize(q, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], -1).unflatten(-1, (3, 3))


def matrix_to_quat(m: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) xyzw quaternions with w >= 0."""
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1],
                     1 + trace], -1),
        torch.stack([1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0],
                     m[..., 0, 2] + m[..., 2, 0], m[..., 2, 1] - m[..., 1, 2]], -1),
        torch.stack([m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                     m[..., 1, 2] + m[..., 2, 1], m[..., 0, 2] - m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], m[..., 1, 0] - m[..., 0, 1]], -1),
    ], -2)  # each row is 4 * component * q for one choice of the largest component
    pick = torch.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1).argmax(-1)
    q = candidates.gather(-2, pick[..., None, None].expand(*pick.shape, 1, 4)).squeeze(-2)
    return canonical(torch.nn.functional.normalize(q, dim=-1))


def canonical(q: Tensor) -> Tensor:
    """The same rotation with w >= 0."""
    return torch.where(q[..., 3:] < 0, -q, q)


def matrix_to_euler(m: Tensor) -> Tensor:
    """Extrinsic x-y-z angles in radians (R = Rz Ry Rx), pitch in [-pi/2, pi/2]."""
    pitch = torch.asin((-m[..., 2, 0]).clamp(-1, 1))
    roll = torch.atan2(m[..., 2, 1], m[..., 2, 2])
    yaw = torch.atan2(m[..., 1, 0], m[..., 0, 0])
    return torch.stack([roll, pitch, yaw], -1)


def euler_to_matrix(e: Tensor) -> Tensor:
    roll, pitch, yaw = e.unbind(-1)
    cr, sr, cp, sp, cy, sy = roll.cos(), roll.sin(), pitch.cos(), pitch.sin(), yaw.cos(), yaw.sin()
    return torch.stack([
        cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr,
        sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr,
        -sp, cp * sr, cp * cr,
    ], -1).unflatten(-1, (3, 3))


def quat_to_bins(q: Tensor) -> Tensor:
    """(..., 4) quaternions -> (..., 3) bin indices of the x, y, z Euler angles."""
    degrees = torch.rad2deg(matrix_to_euler(quat_to_matrix(q)))
    return torch.round((degrees + 180) / BIN_DEGREES).long() % BINS


def bins_to_quat(bins: Tensor) -> Tensor:
    """(..., 3) bin indices -> canonical (..., 4) quaternions."""
    radians = torch.deg2rad(bins.float() * BIN_DEGREES - 180)
    return matrix_to_quat(euler_to_matrix(radians))


def gaussian_heatmaps(pixels: Tensor, size: int, sigma: float = 1.5) -> Tensor:
    """(..., 2) pixel positions (u, v) -> (..., size, size) Gaussians over the pixel coordinates, cut below
    3 sigma and normalised (sum + 1e-6), as ARP's heatmap targets."""
    grid = torch.arange(size, device=pixels.device, dtype=pixels.dtype)
    du = torch.exp(-((grid - pixels[..., 0:1]) ** 2) / (2 * sigma**2))  # columns
    dv = torch.exp(-((grid - pixels[..., 1:2]) ** 2) / (2 * sigma**2))  # rows
    heat = dv[..., :, None] * du[..., None, :]  # separable: 2 x size exponentials, not size^2
    heat = torch.where(heat < math.exp(-4.5), 0, heat)
    return heat / (heat.sum((-2, -1), keepdim=True) + 1e-6)


def sample(maps: Tensor, points: Tensor) -> Tensor:
    """(N, C, H, W) maps at (N, P, 2) continuous (x, y) positions -> (N, P, C), as RVT reads heatmaps and
    feature maps: the 4 surrounding cells (at integer coordinates) weighted by inverse distance; positions
    outside [0, W - 1] x [0, H - 1] read 0."""
    n, c, h, w = maps.shape
    x, y = points.unbind(-1)
    inside = (x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)
    fx, cx, fy, cy = x.floor(), x.ceil(), y.floor(), y.ceil()
    col = torch.fmod(torch.stack([fx, fx, cx, cx], -1).long(), w).clamp(min=0)
    row = torch.fmod(torch.stack([fy, cy, fy, cy], -1).long(), h).clamp(min=0)
    weight = inside[..., None] / (torch.hypot(x[..., None] - col, y[..., None] - row) + 1e-10)
    total = weight.sum(-1, keepdim=True)
    weight = weight / torch.where(total == 0, 1, total)
    flat = (row * w + col).view(n, 1, -1).expand(n, c, -1)
    values = maps.flatten(2).gather(2, flat).view(n, c, *weight.shape[1:])
    return (values * weight[:, None]).sum(-1).transpose(1, 2)


def heatmaps_to_point(logits: Tensor) -> Tensor:
    """(B, 3 views, S, S) heatmap logits -> (B, 3) cube point maximising the mean view probability (ARP).

    The candidates are the S^3 pixel-centre points of the cube; each reads every view's probability with
    `sample` at its projection, (row + 0.5, column + 0.5). Candidate (i, j, k) scores
    top[S-1-j, i] + front[S-1-k, j] + right[S-1-k, S-1-i] over those sampled maps. One sample at a time:
    the score volume has S^3 entries.
    """
    b, v, s, _ = logits.shape
    p = logits.flatten(2).softmax(-1).view(b * v, 1, s, s)
    centre = torch.arange(s, device=logits.device, dtype=p.dtype) + 0.5
    grid = torch.stack(torch.meshgrid(centre, centre, indexing="ij")[::-1], -1).view(1, s * s, 2)
    q = sample(p, grid.expand(b * v, -1, -1)).view(b, v, s, s)
    top = q[:, 0].flip(1).transpose(1, 2)  # [i, j] = top[S-1-j, i]
    front = q[:, 1].flip(1).transpose(1, 2)  # [j, k] = front[S-1-k, j]
    right = q[:, 2].flip(1).flip(2).transpose(1, 2)  # [i, k] = right[S-1-k, S-1-i]
    best = []
    for n in range(b):
        score = (top[n, :, :, None] + front[n, None, :, :] + right[n, :, None, :]) / 3
        best.append(score.flatten().argmax())
    flat = torch.stack(best)
    i, j, k = flat // (s * s), (flat // s) % s, flat % s
    return (torch.stack([i, j, k], -1).to(logits.dtype) + 0.5) * 2 / s - 1


def point_pixels(cube: Tensor, size: int) -> Tensor:
    """(..., 3) cube points -> (..., 3 views, 2) pixel positions (u, v) in the rendered views."""
    return project(cube, size)[..., :2]


def augment(points: Tensor, target: Tensor, quat: Tensor, bounds: Sequence[float],
            generator: torch.Generator | None = None, shift: float = 0.125,
            yaw_degrees: float = 45.0) -> tuple[Tensor, Tensor, Tensor]:
    """ARP's SE(3) perturbation about the target: a yaw within +-`yaw_degrees` and a translation within
    +-`shift` of the bounds' extent per axis, limited so that the target stays inside the bounds, applied
    alike to the (B, N, 3) world points, the (B, 3) target position and (B, 4) orientation."""
    b = points.shape[0]
    dev = points.device
    yaw = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * math.radians(yaw_degrees)
    rot = euler_to_matrix(torch.stack([torch.zeros_like(yaw), torch.zeros_like(yaw), yaw], -1))
    lo, hi = points.new_tensor(bounds[:3]), points.new_tensor(bounds[3:])
    t = (torch.rand(b, 3, generator=generator, device=dev) * 2 - 1) * shift * (hi - lo)
    t = torch.minimum(torch.maximum(t, lo - target), hi - target)
    moved = (points - target[:, None]) @ rot.transpose(1, 2) + target[:, None] + t[:, None]
    new_quat = matrix_to_quat(rot @ quat_to_matrix(quat))
    return moved, target + t, new_quat
