"""ARP on MVT: the renderer against a brute-force reference, rotation and action codes, heatmap decoding,
the full-size parameter count, and overfitting real RLBench keyframes with a small config."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mirror.config import load_config
from mirror.data.keyframes.points import world_points
from mirror.data.rlbench.episode import RawEpisode
from mirror.data.rlbench.format import episode_folder
from mirror.models.execution import geometry as geo
from mirror.models.execution.arp import ARP
from mirror.models.execution.renderer import project, render
from mirror.models.protocol import DataSpec
from tests.conftest import ROOT, SHARED_DATA

ARP_YAML = ROOT / "configs/rlbench/arp.yaml"
SMALL = ["execution.image_size=112", "execution.mvt_channels=32", "execution.embed=64", "execution.mvt_width=128",
         "execution.mvt_depth=2", "execution.mvt_heads=4", "execution.policy_heads=4", "execution.policy_mlp=128",
         "execution.cross_layers=2", "execution.self_layers=2", "execution.upsample_width=32", "execution.dropout=0",
         "execution.clip_checkpoint=null"]


def brute_render(points, colours, size, center=None, zoom=1.0):
    """Every point, every view, in Python: nearest point per pixel, then the nearest of the pixel and
    its 4 neighbours; channels RGB, cube xyz, depth (-1 empty)."""
    cube = points if center is None else (points - center) * zoom
    out = torch.zeros(3, 7, size, size)
    out[:, 6] = -1
    for view in range(3):
        best = {}
        for i, q in enumerate(cube):
            if (q.abs() > 1).any():
                continue
            u, v, d = project(q[None], size)[0, view].tolist()
            key = (min(max(math.floor(v), 0), size - 1), min(max(math.floor(u), 0), size - 1))
            if key not in best or (d, -i) < (best[key][0], -best[key][1]):
                best[key] = (d, i)
        for r in range(size):
            for c in range(size):
                found = [(best[(r + dr, c + dc)][0], n, best[(r + dr, c + dc)][1])
                         for n, (dr, dc) in enumerate([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])
                         if (r + dr, c + dc) in best]
                if found:
                    d, _, i = min(found)
                    out[view, :, r, c] = torch.cat([colours[i], cube[i], torch.tensor([d])])
    return out


@pytest.mark.parametrize("zoomed", [False, True])
def test_renderer_equals_brute_force(zoomed):
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(2, 400, 3, generator=gen) * 2.4 - 1.2
    colours = torch.rand(2, 400, 3, generator=gen)
    center = torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.0]]) if zoomed else None
    got = render(points, colours, 20, center, 4.0 if zoomed else 1.0)
    for b in range(2):
        ref = brute_render(points[b], colours[b], 20, None if center is None else center[b], 4.0 if zoomed else 1.0)
        assert torch.equal(got[b, :, :7], ref)
    assert got.shape == (2, 3, 10, 20, 20)
    assert torch.equal(got[0, 2, 7], torch.full((20, 20), 1.0))  # view-index channel of the third view


def test_rotation_bins_quaternions_and_actions_round_trip():
    quats = torch.tensor(Rotation.random(500, random_state=0).as_quat(), dtype=torch.float32)
    m = geo.quat_to_matrix(quats)
    assert np.allclose(m.numpy(), Rotation.from_quat(quats.numpy()).as_matrix(), atol=1e-5)
    assert np.allclose(geo.matrix_to_euler(m).numpy(), Rotation.from_quat(quats.numpy()).as_euler("xyz"), atol=1e-4)
    assert torch.allclose(geo.matrix_to_quat(m), geo.canonical(quats), atol=1e-5)
    bins = geo.quat_to_bins(quats)
    decoded = geo.bins_to_quat(bins)
    assert (decoded[:, 3] >= 0).all()
    assert torch.equal(geo.quat_to_bins(decoded), bins)
    exact = torch.randint(0, geo.BINS, (200, 3))
    exact[:, 1] = exact[:, 1].clamp(19, 53)  # pitch inside (-90, 90) degrees, where Euler angles are unique
    assert torch.equal(geo.quat_to_bins(geo.bins_to_quat(exact)), exact)


def test_heatmaps_recover_a_planted_peak():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, generator=gen) * 1.8 - 0.9
    soft = geo.gaussian_heatmaps(geo.point_pixels(target, 224), 224)
    assert torch.allclose(soft.sum((-2, -1)), torch.ones(4, 3))
    logits = torch.log(soft + 1e-6) + 0.05 * torch.randn(4, 3, 224, 224, generator=gen)
    assert (geo.heatmaps_to_point(logits) - target).abs().max() < 2 / 224


def test_full_size_matches_the_published_profile_and_runs_on_cpu():
    cfg = load_config(ARP_YAML, ["execution.clip_checkpoint=null"]).execution
    model = ARP(cfg, DataSpec(["open the top drawer"], ["open_drawer"])).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"ARP parameters: {params / 1e6:.2f} M (published 71.9 M)")
    assert abs(params / 71.9e6 - 1) < 0.05
    inputs = {"rgb": torch.randint(0, 255, (1, 4, 128, 128, 3), dtype=torch.uint8),
              "xyz": torch.rand(1, 4, 128, 128, 3) + torch.tensor([-0.3, -0.5, 0.6]),
              "proprio": torch.tensor([[1.0, 0.04, 0.04]]), "instruction": torch.tensor([0])}
    action = model.act(inputs)
    assert action.shape == (1, 9) and torch.isfinite(action).all()
    assert abs(action[0, 3:7].norm().item() - 1) < 1e-4


@pytest.mark.skipif(not (SHARED_DATA / "rlbench").is_dir(), reason="../shared/data/rlbench is not beside the checkout")
def test_small_config_overfits_real_keyframes():
    torch.manual_seed(0)
    episode = RawEpisode(episode_folder(SHARED_DATA / "rlbench", "open_drawer", 0), "open_drawer", 0)
    obs = [episode.observation(s.obs_frame) for s in episode.info.samples]
    batch = {
        "rgb": torch.from_numpy(np.stack([o["rgb"] for o in obs])),
        "xyz": torch.from_numpy(np.stack([world_points(o) for o in obs])),
        "proprio": torch.tensor([s.proprio for s in episode.info.samples]),
        "pose": torch.tensor([s.pose for s in episode.info.samples]),
        "gripper_open": torch.tensor([s.gripper_open for s in episode.info.samples]),
        "ignore_collisions": torch.tensor([s.ignore_collisions for s in episode.info.samples]),
        "instruction": torch.zeros(len(obs), dtype=torch.long),
    }
    cfg = load_config(ARP_YAML, SMALL + ["execution.augment=false"]).execution
    model = ARP(cfg, DataSpec([episode.info.descriptions[0]], ["open_drawer"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(120):
        out = model(batch, task=True)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 5
    model.eval()
    action = model.act(batch)
    errors = (action[:, :3] - batch["pose"][:, :3]).norm(dim=-1)
    assert errors.max() < 0.02, errors
