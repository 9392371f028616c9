"""Rotations, discretisation and heatmap geometry of the ARP policy, batched in torch.

Quaternions are (x, y, z, w) as RLBench stores them; Euler angles are extrinsic x-y-z (scipy's 'xyz'),
split into 72 bins of 5 degrees; a decoded quaternion is made canonical (w >= 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mirror.models.execution.renderer import from_cube, project

BINS = 72
BIN_DEGREES = 360 / BINS


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
    """(..., 2) pixel positions (u, v) -> (..., size, size) Gaussians cut at 3 sigma, summing to 1."""
    grid = torch.arange(size, device=pixels.device, dtype=pixels.dtype) + 0.5
    du = (grid - pixels[..., 0:1]) ** 2  # columns
    dv = (grid - pixels[..., 1:2]) ** 2  # rows
    logits = -(dv[..., :, None] + du[..., None, :]) / (2 * sigma**2)
    heat = torch.where(logits >= -4.5, logits.exp(), torch.zeros_like(logits))
    return heat / heat.sum((-2, -1), keepdim=True).clamp(min=1e-12)


def heatmaps_to_point(logits: Tensor) -> Tensor:
    """(B, 3 views, S, S) heatmap logits -> (B, 3) cube point maximising the mean view probability.

    The 3-D grid is the pixel centres, so every grid point projects onto pixel centres: the score of
    (i, j, k) is top[row S-1-j, col i] + front[row S-1-k, col j] + right[row S-1-k, col S-1-i]. One sample
    at a time: the score volume has S^3 entries.
    """
    b, _, s, _ = logits.shape
    p = logits.flatten(2).softmax(-1).view(b, 3, s, s)
    top = p[:, 0].flip(1).transpose(1, 2)  # [i, j] = top[S-1-j, i]
    front = p[:, 1].flip(1).transpose(1, 2)  # [j, k] = front[S-1-k, j]
    right = p[:, 2].flip(1).flip(2).transpose(1, 2)  # [i, k] = right[S-1-k, S-1-i]
    best = []
    for n in range(b):
        score = top[n, :, :, None] + front[n, None, :, :] + right[n, :, None, :]
        best.append(score.flatten().argmax())
    flat = torch.stack(best)
    i, j, k = flat // (s * s), (flat // s) % s, flat % s
    return (torch.stack([i, j, k], -1).float() + 0.5) * 2 / s - 1


def point_pixels(cube: Tensor, size: int) -> Tensor:
    """(..., 3) cube points -> (..., 3 views, 2) pixel positions (u, v) in the rendered views."""
    return project(cube, size)[..., :2]


def augment(points: Tensor, target: Tensor, quat: Tensor, generator: torch.Generator | None = None,
            shift: float = 0.125, yaw_degrees: float = 45.0) -> tuple[Tensor, Tensor, Tensor]:
    """SE(3) perturbation about the target: yaw within +-`yaw_degrees` and a translation within +-`shift` m,
    applied alike to the (B, N, 3) world points, the (B, 3) target position and (B, 4) orientation; the
    translation is limited so that the target stays inside the scene bounds."""
    b = points.shape[0]
    dev = points.device
    yaw = (torch.rand(b, generator=generator, device=dev) * 2 - 1) * math.radians(yaw_degrees)
    rot = euler_to_matrix(torch.stack([torch.zeros_like(yaw), torch.zeros_like(yaw), yaw], -1))
    t = (torch.rand(b, 3, generator=generator, device=dev) * 2 - 1) * shift
    lo, hi = from_cube(points.new_tensor([-1.0] * 3)), from_cube(points.new_tensor([1.0] * 3))
    t = torch.minimum(torch.maximum(target + t, lo), hi) - target
    moved = (points - target[:, None]) @ rot.transpose(1, 2) + target[:, None] + t[:, None]
    new_quat = matrix_to_quat(rot @ quat_to_matrix(quat))
    return moved, target + t, new_quat

