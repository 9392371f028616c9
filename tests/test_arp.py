"""ARP on MVT against mlzxy/arp and NVlabs/RVT: the renderer against a brute-force RVT renderer, parameter counts
per module, ARP's released checkpoint layout through `mirror convert arp`, CLIP RN50 files, SE(3) augmentation,
two-stream decoding, rotation and action codes, heatmap decoding, and overfitting real RLBench keyframes."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, TextTransformer
from scipy.spatial.transform import Rotation
from torch import nn

from mirror.benchmarks.rlbench.episode import RawEpisode
from mirror.benchmarks.rlbench.format import episode_folder
from mirror.config import load_config
from mirror.data.keyframes.points import world_points
from mirror.errors import ConfigError, MirrorError
from mirror.models.execution import geometry as geo
from mirror.models.execution.arp import ARP, networks
from mirror.models.execution.arp_weights import from_arp, load_weights
from mirror.models.execution.language import load_text_tower, token_features
from mirror.models.execution.policy import PROMPTS, ARPHead, ConvexUpsample
from mirror.models.execution.renderer import project, render
from mirror.models.protocol import DataSpec
from mirror.training.optim import build_optimizer, build_param_groups
from tests.conftest import ROOT, SHARED_DATA

ARP_YAML = ROOT / "configs/rlbench/arp.yaml"
SMALL = ["execution.image_size=112", "execution.mvt_channels=32", "execution.embed=64", "execution.mvt_width=128",
         "execution.mvt_depth=2", "execution.mvt_heads=4", "execution.policy_heads=4", "execution.policy_mlp=128",
         "execution.cross_layers=2", "execution.self_layers=2", "execution.upsample_width=32", "execution.dropout=0",
         "execution.clip_checkpoint=null"]
RLBENCH = (-0.3, -0.5, 0.6, 0.7, 0.5, 1.6)

# RVT's cameras on the cube (rvt_renderer.py): eye, look-at point and up vector; orthographic over [-1, 1].
CAMERAS = [((0, 0, 1), (0, 0, 0), (0, 1, 0)), ((1, 0, 0), (0, 0, 0), (0, 0, 1)), ((0, 0.5, 0), (0, 0, 0), (0, 0, 1))]


def camera_pixel(point, camera, size):
    """(column, row, depth) of a point in one of RVT's cameras, from its look-at frame (OpenCV axes)."""
    eye, at, up = (torch.tensor(v, dtype=torch.float32) for v in camera)
    forward = (at - eye) / (at - eye).norm()
    right = torch.linalg.cross(forward, up)
    right = right / right.norm()
    down = -torch.linalg.cross(right, forward)
    rel = point - eye
    half = size / 2
    return half * (right * rel).sum() + half, half * (down * rel).sum() + half, (forward * rel).sum()


def brute_render(cube, colours, valid, size):
    """RVT's point renderer written out point by point: nearest point per pixel with depth in whole
    thousandths (negative -> 0, ties to the lower index), then its splat loop over a (2k + 1)^2 kernel (radius
    0.012 x size / 2 pixels; neighbours empty or at depth 0 skipped, later equal depths win), xyz scaled by the
    cloud's largest magnitude, depth less the view's occupied mean, and the pixel-location channels."""
    scale = max(cube[valid].abs().max().item(), 1e-6)
    radius = 0.012 * size / 2
    k = math.ceil(radius)
    out = torch.zeros(3, 10, size, size)
    for view, camera in enumerate(CAMERAS):
        best = {}
        for i in torch.nonzero(valid).flatten().tolist():
            u, v, d = camera_pixel(cube[i], camera, size)
            if not (0 <= u < size and 0 <= v < size):
                continue
            key = (max(int(d.item() * 1000), 0), i)
            pixel = (int(v), int(u))
            best[pixel] = min(best.get(pixel, key), key)
        near = {(r + dr, c + dc) for r, c in best for dr in range(-k, k + 1) for dc in range(-k, k + 1)}
        image = {}
        for r, c in near:  # farther pixels stay empty
            chosen = best.get((r, c))
            least = chosen[0] / 1000 if chosen else -1.0
            for dc in range(-k, k + 1):
                for dr in range(-k, k + 1):
                    other = best.get((r + dr, c + dc))
                    if other is None or (least != -1 and other[0] / 1000 > least):
                        continue
                    if radius > math.hypot(dc, dr) and other[0] != 0:
                        chosen, least = other, other[0] / 1000
            if chosen and 0 <= r < size and 0 <= c < size:
                image[(r, c)] = chosen
        mean = np.mean([key[0] / 1000 for key in image.values()]) if image else 0.0
        out[view, 6] = -1
        for (r, c), (depth, i) in image.items():
            out[view, :6, r, c] = torch.cat([cube[i] / scale, colours[i]])
            out[view, 6, r, c] = depth / 1000 - mean
        out[view, 7] = [-1.0, 0.0, 1.0][view]
        out[view, 8] = torch.linspace(-1, 1, size)[:, None]
        out[view, 9] = torch.linspace(-1, 1, size)[None, :]
    return out


def scene_cloud(gen, n=300):
    """Random points, two overlapping table tops one pixel apart (equal depths side by side in the top view)
    and duplicated points (equal keys)."""
    points = torch.rand(n, 3, generator=gen) * 2.4 - 1.2
    grid = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij"), -1).view(-1, 2)
    points[:64, :2] = (grid + 0.5) / 112 - 0.2
    points[:64, 2] = 0.3004  # 0.6996 deep in the top view
    points[64:128, :2] = (grid + 4.3) / 112 - 0.2
    points[64:128, 2] = 0.3104
    points[128:148] = points[148:168]
    return points


@pytest.mark.parametrize("zoomed, size", [(False, 224), (True, 224), (False, 112), (False, 336)])
def test_renderer_equals_brute_force_rvt(zoomed, size):
    gen = torch.Generator().manual_seed(3)
    cube = torch.stack([scene_cloud(gen), scene_cloud(gen)])
    colours = torch.rand(2, cube.shape[1], 3, generator=gen)
    valid = (cube.abs() <= 1).all(-1)  # stage 1 drops what lies outside the scene bounds
    valid[1, ::7] = False
    if zoomed:  # stage 2 zooms the same points 4x: many project outside the image or in front of a camera
        cube = (cube - torch.tensor([[0.2, -0.1, 0.3], [-0.4, 0.5, 0.0]])[:, None]) * 4
    got = render(cube, colours, valid, size)
    assert got.shape == (2, 3, 10, size, size)
    for b in range(2):
        assert torch.allclose(got[b], brute_render(cube[b], colours[b], valid[b], size), atol=1e-6)


def test_dropping_invalid_points_changes_no_pixel():
    gen = torch.Generator().manual_seed(4)
    cube = torch.stack([scene_cloud(gen), scene_cloud(gen)]) * 0.9
    colours = torch.rand(2, cube.shape[1], 3, generator=gen)
    valid = torch.rand(2, cube.shape[1], generator=gen) < torch.tensor([[0.3], [0.6]])
    kept, small, tint = geo.compact(valid, cube, colours)
    assert small.shape[1] == valid.sum(1).max() < cube.shape[1]
    assert torch.equal(small[0, : valid[0].sum()], cube[0][valid[0]])  # order kept: ties still go to the same point
    for size in (112, 224):
        for zoom in (1, 4):
            got = render(small * zoom, tint, kept, size)
            for b in range(2):
                assert torch.allclose(got[b], brute_render(cube[b] * zoom, colours[b], valid[b], size), atol=1e-6)


def test_convex_upsampling_is_rafts_per_pixel_sum():
    gen = torch.Generator().manual_seed(5)
    up = ConvexUpsample(6, 5, 4)
    x = torch.randn(2, 6, 3, 3, generator=gen).contiguous(memory_format=torch.channels_last)
    got = up(x)
    low = F.pad(up.logits(x)[:, 0], (1, 1, 1, 1))
    weights = 0.1 * up.mask(x)  # (n, 9 x 4 x 4, g, g): neighbour-major, then the sub-pixel row and column
    want = torch.zeros(2, 12, 12)
    for gy, gx, ry, rx in np.ndindex(3, 3, 4, 4):
        w = weights[:, [k * 16 + ry * 4 + rx for k in range(9)], gy, gx].softmax(-1)
        neighbours = torch.stack([low[:, gy + dy, gx + dx] for dy in range(3) for dx in range(3)], -1)
        want[:, gy * 4 + ry, gx * 4 + rx] = (w * neighbours).sum(-1)
    assert torch.allclose(got, want, atol=1e-6)


def test_zoomed_render_keeps_what_lies_in_front_and_the_right_camera_sits_at_half():
    gripper, target = torch.tensor([0.0, 0.0, 0.5]), torch.tensor([0.0, 0.0, 0.0])
    cube = ((torch.stack([gripper, target]) - target) * 4)[None]  # the gripper ends up above the zoomed cube
    views = render(cube, torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]]), torch.ones(1, 2, dtype=torch.bool), 224)
    assert views[0, 0, 3, 112, 112] == 1.0  # the top view shows the gripper (red), not the target behind it
    assert torch.allclose(project(torch.tensor([0.1, 0.2, 0.3]), 224)[2], torch.tensor([100.8, 78.4, 0.3]))


def test_renderer_handles_a_real_sized_cloud_like_the_loop():
    gen = torch.Generator().manual_seed(0)
    cube = torch.rand(1, 4 * 64 * 64, 3, generator=gen) * 2 - 1
    valid = torch.ones(1, cube.shape[1], dtype=torch.bool)
    views = render(cube, torch.rand(1, cube.shape[1], 3, generator=gen), valid, 224)
    occupied = views[:, :, 6] != -1
    assert occupied.float().mean() > 0.2 and torch.isfinite(views).all()
    assert torch.allclose(views[:, :, 6][occupied].view(-1).mean(), torch.tensor(0.0), atol=0.05)


# Parameters of ARP's RLBench model per module, counted from its code: rlb/autoregressive_policy.py (MVT with
# rlb/utils/layers.py) and arp.py (AutoRegressivePolicy with the ModelConfig of PolicyNetwork).
MVT_COUNTS = {"position": 768 * 128, "proprio": 3 * 64 + 64 + 2 * 64, "patchify": 10 * 64 * 14 * 14 + 64 + 2 * 64,
              "language": 512 * 128 + 128 + 2 * 128, "widen": 128 * 512 + 512, "narrow": 512 * 128 + 128,
              "blocks": 8 * (2 * 512 + 512 * 512 + 512 * 1024 + 512 * 512 + 512
                             + 2 * 512 + 512 * 4096 + 4096 + 2048 * 512 + 512)}
HEAD_COUNTS = {"chunk_embedding": 2 * 128, "type_embedding": 8 * 128, "position": 17 * 128,
               "grip_embedding": 2 * 128, "collision_embedding": 2 * 128,
               "upsample": 2 * (128 * 160 * 9 + 160 + 160 * 160 * 9 + 160 + 160 * 9 + 1
                                + 128 * 160 * 9 + 160 + 160 * 196 * 9 + 196 * 9),
               "heads": 3 * (128 * 72 + 72) + 2 * (128 * 2 + 2),
               "cross": 4 * (128 * 512 + 512 + 512 * 128 + 128 + 128 * 384 + 384 + 128 * 128 + 128 + 2 * 128
                             + 128 * 256 + 256 + 2 * (128 * 128 + 128) + 128 * 768 + 768),
               "blocks": 4 * (4 * 128 + 128 * 512 + 512 + 512 * 128 + 128 + 128 * 384 + 384 + 128 * 128 + 128),
               "norm": 2 * 128}


@pytest.fixture(scope="module")
def full_arp():
    cfg = load_config(ARP_YAML, ["execution.clip_checkpoint=null"]).execution
    return ARP(cfg, DataSpec(["open the top drawer"], ["open_drawer"])).eval()


def count(part):
    return part.numel() if isinstance(part, nn.Parameter) else sum(p.numel() for p in part.parameters())


def test_parameters_per_module_equal_arps(full_arp):
    for k in (0, 1):
        assert {n: count(getattr(full_arp.mvt[k], n)) for n in MVT_COUNTS} == MVT_COUNTS
    assert {n: count(getattr(full_arp.head, n)) for n in HEAD_COUNTS} == HEAD_COUNTS
    assert count(full_arp) == 2 * sum(MVT_COUNTS.values()) + sum(HEAD_COUNTS.values()) == 72_115_622


def test_full_size_runs_on_cpu(full_arp):
    inputs = {"rgb": torch.randint(0, 255, (1, 4, 128, 128, 3), dtype=torch.uint8),
              "xyz": torch.rand(1, 4, 128, 128, 3) + torch.tensor([-0.3, -0.5, 0.6]),
              "proprio": torch.tensor([[1.0, 0.04, 0.04]]), "instruction": torch.tensor([0])}
    action = full_arp.act(inputs)
    assert action.shape == (1, 9) and torch.isfinite(action).all()
    assert abs(action[0, 3:7].norm().item() - 1) < 1e-4


def arp_layout():
    """Names and shapes of ARP's RLBench `model_state`, as its model code builds them."""
    shapes = {}
    for stage in ("mvt1", "mvt2"):
        shapes[f"{stage}.pos_encoding"] = [1, 768, 128]
        for block, cin, cout in (("proprio_preprocess", 3, 64), ("lang_preprocess", 512, 128)):
            shapes |= {f"{stage}.{block}.linear.weight": [cout, cin], f"{stage}.{block}.linear.bias": [cout],
                       f"{stage}.{block}.norm.weight": [cout], f"{stage}.{block}.norm.bias": [cout]}
        shapes |= {f"{stage}.patchify.conv2d.weight": [64, 10, 14, 14], f"{stage}.patchify.conv2d.bias": [64],
                   f"{stage}.patchify.norm.weight": [64], f"{stage}.patchify.norm.bias": [64],
                   f"{stage}.fc_bef_attn.linear.weight": [512, 128], f"{stage}.fc_bef_attn.linear.bias": [512],
                   f"{stage}.fc_aft_attn.linear.weight": [128, 512], f"{stage}.fc_aft_attn.linear.bias": [128]}
        for i in range(8):
            layer = f"{stage}.layers.{i}"
            shapes |= {f"{layer}.0.norm.weight": [512], f"{layer}.0.norm.bias": [512],
                       f"{layer}.0.fn.to_q.weight": [512, 512], f"{layer}.0.fn.to_kv.weight": [1024, 512],
                       f"{layer}.0.fn.to_out.weight": [512, 512], f"{layer}.0.fn.to_out.bias": [512],
                       f"{layer}.1.norm.weight": [512], f"{layer}.1.norm.bias": [512],
                       f"{layer}.1.fn.net.0.weight": [4096, 512], f"{layer}.1.fn.net.0.bias": [4096],
                       f"{layer}.1.fn.net.2.weight": [512, 2048], f"{layer}.1.fn.net.2.bias": [512]}
    p = "policy"
    shapes |= {f"{p}.chunk_embedder.chunk_embed.weight": [2, 128], f"{p}.chunk_embedder.token_type_embed.weight":
               [8, 128], f"{p}.pos_emb.weight": [17, 128], f"{p}.final_ln.weight": [128], f"{p}.final_ln.bias": [128]}
    for t in (6, 7):
        shapes[f"{p}.token_embedders.{t}.embed.0.weight"] = [2, 128]
    for t in (1, 2):
        u = f"{p}.token_predictors.{t}.upsample"
        shapes |= {f"{u}.net_out.0.weight": [160, 128, 3, 3], f"{u}.net_out.0.bias": [160],
                   f"{u}.net_out.2.weight": [160, 160, 3, 3], f"{u}.net_out.2.bias": [160],
                   f"{u}.net_out.4.weight": [1, 160, 3, 3], f"{u}.net_out.4.bias": [1],
                   f"{u}.net_mask.0.weight": [160, 128, 3, 3], f"{u}.net_mask.0.bias": [160],
                   f"{u}.net_mask.2.weight": [14 * 14 * 9, 160, 1, 1], f"{u}.net_mask.2.bias": [14 * 14 * 9]}
    for t, classes in ((3, 72), (4, 72), (5, 72), (6, 2), (7, 2)):
        shapes |= {f"{p}.token_predictors.{t}.linear.weight": [classes, 128],
                   f"{p}.token_predictors.{t}.linear.bias": [classes]}
    for i in range(8):
        b = f"{p}.blocks.{i}"
        shapes |= {f"{b}.mlp.fc1.weight": [512, 128], f"{b}.mlp.fc1.bias": [512], f"{b}.mlp.fc2.weight": [128, 512],
                   f"{b}.mlp.fc2.bias": [128], f"{b}.attn.c_attn.weight": [384, 128], f"{b}.attn.c_attn.bias": [384],
                   f"{b}.attn.c_proj.weight": [128, 128], f"{b}.attn.c_proj.bias": [128]}
        if i < 4:  # cross layers: AdaLN (no affine norms), conditioned on the view tokens
            shapes |= {f"{b}.norm_cond.weight": [128], f"{b}.norm_cond.bias": [128],
                       f"{b}.cond_attn.kv_attn.weight": [256, 128], f"{b}.cond_attn.kv_attn.bias": [256],
                       f"{b}.cond_attn.q_attn.weight": [128, 128], f"{b}.cond_attn.q_attn.bias": [128],
                       f"{b}.cond_attn.c_proj.weight": [128, 128], f"{b}.cond_attn.c_proj.bias": [128],
                       f"{b}.adaLN_modulation.1.weight": [768, 128], f"{b}.adaLN_modulation.1.bias": [768]}
        else:
            shapes |= {f"{b}.ln_attn.weight": [128], f"{b}.ln_attn.bias": [128], f"{b}.ln_mlp.weight": [128],
                       f"{b}.ln_mlp.bias": [128]}
    return shapes


@pytest.fixture(scope="module")
def arp_state():
    """Random weights in ARP's layout, with the rotation code's frequencies (buffers of its Position1DEmbedding)."""
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.rand(s, generator=gen) for k, s in arp_layout().items()}
    for t in (3, 4, 5):
        state[f"policy.token_embedders.{t}.div_term"] = 10000 ** (-torch.arange(0, 128, 2) / 128)[None]
    return state


def save_like_arp(state, path):
    """A file like ARP's released `model_*.pth`: the weights, with its optimiser and an LR scheduler object."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    torch.save({"step": 80000, "model_state": state, "optimizer_state": optimizer.state_dict(),
                "lr_sched_state": {"after_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 10)}},
               path)


def test_arps_checkpoint_converts_key_by_key(tmp_path, cli, full_arp, arp_state):
    state = dict(arp_state)
    assert len(state) == 386
    assert sum(v.numel() for k, v in state.items() if "div_term" not in k) == 72_115_622
    save_like_arp(state, tmp_path / "model_80000.pth")
    code, out, err = cli("convert", "arp", str(tmp_path / "model_80000.pth"), str(tmp_path / "arp.pt"))
    assert code == 0, err
    converted = torch.load(tmp_path / "arp.pt", weights_only=True)
    same = {"mvt.0.position": "mvt1.pos_encoding",
            "mvt.1.blocks.7.attn.to_kv.weight": "mvt2.layers.7.0.fn.to_kv.weight",
            "mvt.0.blocks.2.ff.out.weight": "mvt1.layers.2.1.fn.net.2.weight",
            "head.cross.2.cross.kv.weight": "policy.blocks.2.cond_attn.kv_attn.weight",
            "head.cross.0.modulation.1.bias": "policy.blocks.0.adaLN_modulation.1.bias",
            "head.blocks.1.attn.qkv.bias": "policy.blocks.5.attn.c_attn.bias",
            "head.upsample.1.mask.2.weight": "policy.token_predictors.2.upsample.net_mask.2.weight",
            "head.heads.4.weight": "policy.token_predictors.7.linear.weight",
            "head.type_embedding.weight": "policy.chunk_embedder.token_type_embed.weight",
            "head.norm.weight": "policy.final_ln.weight"}
    assert all(torch.equal(converted[ours], state[theirs]) for ours, theirs in same.items())
    weights = sorted(tuple(v.flatten()[:4].tolist()) for k, v in state.items() if "div_term" not in k)
    assert sorted(tuple(v.flatten()[:4].tolist()) for v in converted.values()) == weights  # each exactly once
    load_weights(full_arp, tmp_path / "model_80000.pth")  # ARP's file directly, as execution.checkpoint does
    assert all(torch.equal(full_arp.state_dict()[k], v) for k, v in converted.items())
    save_like_arp({k: v for k, v in state.items() if k.startswith("policy.")}, tmp_path / "policy_only.pth")
    code, out, err = cli("convert", "arp", str(tmp_path / "policy_only.pth"), str(tmp_path / "again.pt"))
    assert code == 1 and "nothing provides 'mvt.0.position'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "again.pt").exists()


@pytest.mark.parametrize("edit, message", [
    ({"policy.blocks.8.attn.c_attn.bias": torch.zeros(384)}, "ARP key 'policy.blocks.8.attn.c_attn.bias' has no"),
    ({"mvt1.layers.0.0.fn.to_kv.weight": torch.zeros(512, 1024)},
     r"shape of ARP key 'mvt1.layers.0.0.fn.to_kv.weight' is \[512, 1024\]"),
    ({"policy.token_embedders.4.div_term": torch.zeros(1, 64)}, "'policy.token_embedders.4.div_term' is not"),
    ({"policy.final_ln.bias": None}, "nothing provides 'head.norm.bias'"),
])
def test_converter_names_the_first_bad_key(full_arp, arp_state, edit, message):
    own = {k: v.shape for k, v in full_arp.state_dict().items()}
    with pytest.raises(MirrorError, match=message) as err:
        from_arp({k: v for k, v in {**arp_state, **edit}.items() if v is not None}, own, "model.pth")
    assert "\n" not in str(err.value)


def buffers_tree(state):
    """A module holding `state` under its dotted names, for a TorchScript archive like OpenAI's files."""
    root = nn.Module()
    for key, value in state.items():
        *path, leaf = key.split(".")
        node = root
        for part in path:
            if not hasattr(node, part):
                node.add_module(part, nn.Module())
            node = getattr(node, part)
        node.register_buffer(leaf, value)
    return root


def tiny_tower(seed):
    torch.manual_seed(seed)
    return TextTransformer(context_length=77, width=32, heads=2, layers=2, output_dim=16, act_layer=QuickGELU,
                           output_tokens=True).eval()


@pytest.mark.parametrize("form", ["openai_torchscript", "openai_export", "open_clip"])
def test_clip_text_tower_loads_the_files_users_have(tmp_path, form):
    source = tiny_tower(1)
    clip = {**source.state_dict(), "visual.conv1.weight": torch.rand(8, 3, 7, 7), "logit_scale": torch.tensor(4.6)}
    openai = {**clip, "input_resolution": torch.tensor(224), "context_length": torch.tensor(77),
              "vocab_size": torch.tensor(49408)}
    path = tmp_path / "RN50.pt"
    if form == "openai_torchscript":
        torch.jit.script(buffers_tree(openai)).save(str(path))
    else:
        torch.save(openai if form == "openai_export" else clip, path)
    tower = tiny_tower(2)
    load_text_tower(tower, path)
    texts = ["open the top drawer", "close the jar"]
    assert torch.equal(token_features(tower, texts), token_features(source, texts))
    del clip["transformer.resblocks.1.ln_2.bias"]
    torch.save(clip, path)
    with pytest.raises(MirrorError, match="first mismatched key 'transformer.resblocks.1.ln_2.bias'"):
        load_text_tower(tower, path)


def test_se3_augmentation_keeps_the_scene_fixed_in_the_gripper_frame():
    gen = torch.Generator().manual_seed(0)
    bounds = (-0.5, -0.2, 0.0, 0.5, 0.8, 0.3)  # not a cube: translation limits scale with each axis' extent
    points = torch.rand(4, 50, 3, generator=gen) * 0.3
    target = torch.tensor([[0.0, 0.3, 0.1], [0.45, 0.75, 0.25], [-0.1, 0.0, 0.2], [0.2, 0.5, 0.05]])
    quat = torch.tensor(Rotation.random(4, random_state=1).as_quat(), dtype=torch.float32)
    moved, new_target, new_quat = geo.augment(points, target, quat, bounds, generator=gen)
    before = (points - target[:, None]) @ geo.quat_to_matrix(quat)
    after = (moved - new_target[:, None]) @ geo.quat_to_matrix(new_quat)
    assert torch.allclose(before, after, atol=1e-5)
    extent = torch.tensor([1.0, 1.0, 0.3])
    assert ((new_target - target).abs() <= 0.125 * extent + 1e-6).all()
    lo, hi = torch.tensor(bounds[:3]), torch.tensor(bounds[3:])
    assert ((new_target >= lo - 1e-6) & (new_target <= hi + 1e-6)).all()
    delta = geo.quat_to_matrix(new_quat) @ geo.quat_to_matrix(quat).transpose(1, 2)  # a turn about z only
    assert torch.allclose(delta[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(4, 3), atol=1e-5)
    assert (torch.rad2deg(torch.atan2(delta[:, 1, 0], delta[:, 0, 0])).abs() <= 45 + 1e-4).all()


def test_placement_in_the_cube_is_arps():
    bounds = (-0.5, -0.2, 0.0, 0.5, 0.8, 0.3)  # largest extent 1.0 m: 2 cube units per metre on every axis
    points = torch.tensor([[0.0, 0.3, 0.15], [0.5, 0.8, 0.3]])
    assert torch.allclose(geo.to_cube(points, bounds), torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.3]]))
    assert torch.allclose(geo.from_cube(geo.to_cube(points, bounds), bounds), points)
    assert torch.allclose(geo.to_cube(torch.tensor(RLBENCH[:3]), RLBENCH), torch.tensor([-1.0, -1.0, -1.0]))


@pytest.fixture
def head():
    torch.manual_seed(0)
    return ARPHead(dim=32, heads=4, hidden=64, cross_layers=2, self_layers=2, upsample=16, ratio=4).eval()


def test_greedy_decoding_agrees_with_teacher_forced_logits(head):
    prompts = torch.randn(5, PROMPTS, 32)
    bins, grip, collision, content = head.decode(prompts)
    values = [*bins.unbind(1), grip, collision]
    forced, queries = head.sequence(prompts, values, range(PROMPTS, PROMPTS + 5))
    logits = head.logits(queries)
    assert all(torch.equal(step.argmax(-1), value) for step, value in zip(logits, values, strict=True))
    assert torch.allclose(forced, content, atol=1e-5)
    for i in range(5):  # each token's prediction sees only the tokens before it
        _, alone = head.sequence(prompts, values[:i], [PROMPTS + i])
        assert torch.allclose(head.logits(alone, PROMPTS + i)[0], logits[i], atol=1e-5)


def test_grip_and_collision_do_not_attend_to_the_rotation(head):
    prompts = torch.randn(3, PROMPTS, 32)
    grip, collision = torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1])
    outs = []
    for rotation in (torch.tensor([[3, 40, 70]] * 3), torch.tensor([[60, 2, 11]] * 3)):
        _, queries = head.sequence(prompts, [*rotation.unbind(1), grip, collision], range(PROMPTS, PROMPTS + 5))
        outs.append(head.logits(queries))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(outs[0][3:], outs[1][3:], strict=True))
    assert not torch.allclose(outs[0][1], outs[1][1])  # rot-y does see rot-x


def layer_norm(x, eps=1e-6):
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)


def attention(q, k, v, heads):
    """Multi-head softmax attention, (T, C) queries against (S, C) keys and values."""
    split = [z.view(z.shape[0], heads, -1).transpose(0, 1) for z in (q, k, v)]
    weights = torch.softmax(split[0] @ split[1].transpose(1, 2) / math.sqrt(split[0].shape[-1]), -1)
    return (weights @ split[2]).transpose(0, 1).reshape(q.shape[0], -1)


def test_cross_block_is_arps_adaln(head):
    """arp.py ChunkTransformerLayer with AdaLN and norm_before_AdaLN: shift, scale and gate from
    Linear(SiLU(LayerNorm(cross-attention(LayerNorm(x), context)))), modulating affine-free LayerNorms (eps 1e-6)."""
    block = head.cross[0]
    torch.manual_seed(1)
    nn.init.normal_(block.modulation[1].weight, std=0.3)
    x, context = torch.randn(1, 1, 32), torch.randn(1, 16, 32)
    lin = {name: (m.weight, m.bias) for name, m in block.named_modules() if isinstance(m, nn.Linear)}

    def apply(name, z):
        return z @ lin[name][0].T + lin[name][1]

    q = apply("cross.q", layer_norm(x[0]) * block.norm_c.weight + block.norm_c.bias)
    k, v = apply("cross.kv", context[0]).chunk(2, -1)
    c = layer_norm(apply("cross.out", attention(q, k, v, 4)))
    shift1, scale1, gate1, shift2, scale2, gate2 = apply("modulation.1", F.silu(c)).chunk(6, -1)
    h = layer_norm(x[0]) * (1 + scale1) + shift1
    y = x[0] + gate1 * apply("attn.out", attention(*apply("attn.qkv", h).chunk(3, -1), 4))
    h = layer_norm(y) * (1 + scale2) + shift2
    expected = y + gate2 * apply("mlp.3", F.gelu(apply("mlp.0", h), approximate="tanh"))
    with torch.no_grad():
        assert torch.allclose(block(x, context)[0], expected, atol=1e-5)


def test_rotation_tokens_use_a_fixed_sine_code(head):
    bins = torch.tensor([0, 5, 71])
    content = head.content(torch.zeros(3, PROMPTS, 32), [bins])[:, PROMPTS]
    frequency = 10000 ** (-torch.arange(0, 32, 2) / 32)
    angle = bins[:, None] * frequency
    assert torch.allclose(content, torch.cat([angle.sin(), angle.cos()], -1), atol=1e-6)
    assert not any(p.shape[0] == geo.BINS for n, p in head.named_parameters() if "embedding" in n)


def test_initialisation_and_norms_are_arps(head):
    cfg = load_config(ARP_YAML, ["execution.clip_checkpoint=null"]).execution
    torch.manual_seed(0)
    mvt, _ = networks(cfg)
    assert 0.95 < mvt[0].position.std().item() < 1.05  # ARP's torch.randn positions
    widen = mvt[0].widen.weight
    assert widen.abs().max() <= math.sqrt(6 / sum(widen.shape)) and torch.equal(mvt[0].widen.bias, torch.zeros(512))
    qkv = head.blocks[0].attn.qkv.weight
    assert qkv.abs().max() <= math.sqrt(6 / sum(qkv.shape)) and qkv.abs().max() > 0.8 * math.sqrt(6 / sum(qkv.shape))
    assert 0.015 < head.type_embedding.weight.std().item() < 0.025
    assert torch.equal(ARPHead(32, 4, 64, 1, 1, 8, 4).cross[0].modulation[1].weight, torch.zeros(192, 32))
    assert {m.eps for m in [*head.cross.modules(), *head.blocks.modules()] if isinstance(m, nn.LayerNorm)} == {1e-6}
    assert head.norm.eps == 1e-5


def test_rotation_jitter_follows_arps_distribution():
    cfg = load_config(ARP_YAML, SMALL).execution
    model = ARP(cfg, DataSpec(["x"], ["t"]))
    torch.manual_seed(0)
    drawn = model.jitter(torch.zeros(20000, 3, dtype=torch.long)).flatten()
    frequency = {v: (drawn == v % geo.BINS).float().mean().item() for v in (0, -1, -2, 1, 2)}
    assert frequency[0] == pytest.approx(0.4, abs=0.01) and frequency[-1] == pytest.approx(0.4, abs=0.01)
    assert frequency[-2] == pytest.approx(0.2, abs=0.01) and frequency[1] == frequency[2] == 0  # as ARP's list


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
    assert torch.allclose(soft.sum((-2, -1)), torch.ones(4, 3), atol=1e-4)
    u, v = geo.point_pixels(target, 224)[1, 2].tolist()  # ARP's target: exp(-d^2 / 2 sigma^2), cut at 3 sigma
    rows, cols = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    d2 = (cols - u) ** 2 + (rows - v) ** 2
    want = torch.exp(-d2 / 4.5) * (d2 <= 9 * 2.25)
    assert torch.allclose(soft[1, 2], want / want.sum(), atol=1e-6)
    logits = torch.log(soft + 1e-6) + 0.05 * torch.randn(4, 3, 224, 224, generator=gen)
    assert (geo.heatmaps_to_point(logits) - target).abs().max() < 2 / 224


def test_bad_arp_config_values_fail_with_one_line():
    for override, key in (("execution.scene_bounds=[0,0,0,1,1]", "scene_bounds"),
                          ("execution.rotation_jitter_p=[1.0]", "rotation_jitter_p")):
        cfg = load_config(ARP_YAML, [*SMALL, override]).execution
        with pytest.raises(ConfigError, match=f"'execution.{key}'"):
            ARP(cfg, DataSpec(["x"], ["t"]))


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
    quiet = ["execution.augment=false", "execution.jitter=false", "execution.rgb_noise=0", "execution.zoom_noise=0"]
    cfg = load_config(ARP_YAML, SMALL + quiet).execution
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


def scene_batch(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """n random scenes (4 cameras of 16 x 16 points inside RLBench's bounds) with random key poses."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.tensor(RLBENCH[:3]), torch.tensor(RLBENCH[3:])
    return {
        "rgb": torch.randint(0, 256, (n, 4, 16, 16, 3), generator=gen, dtype=torch.uint8),
        "xyz": lo + (hi - lo) * torch.rand(n, 4, 16, 16, 3, generator=gen),
        "proprio": torch.rand(n, 3, generator=gen),
        "pose": torch.cat([lo + (hi - lo) * (0.2 + 0.6 * torch.rand(n, 3, generator=gen)),
                           torch.tensor(Rotation.random(n, random_state=seed).as_quat(), dtype=torch.float32)], 1),
        "gripper_open": torch.ones(n), "ignore_collisions": torch.zeros(n),
        "instruction": torch.zeros(n, dtype=torch.long),
    }


def test_stage_two_must_look_at_the_scene_without_se3_augmentation():
    """ARP always trains stage 2 around a noisy centre: with the SE(3) augmentation off, the zoomed target is
    still spread over the view, so the best heatmap that ignores the scene keeps a large loss."""
    cfg = load_config(ARP_YAML, [*SMALL, "execution.augment=false"]).execution
    model = ARP(cfg, DataSpec(["x"], ["t"])).train()
    batch = scene_batch(4)
    torch.manual_seed(0)
    with torch.no_grad():
        targets = torch.cat([model.run(batch, train=True, noisy=True)["target2"] for _ in range(8)])
    soft = geo.gaussian_heatmaps(geo.point_pixels(targets, cfg.image_size), cfg.image_size).flatten(2)
    best_constant = soft.mean(0, keepdim=True)  # the scene-blind heatmap that minimises the mean loss
    loss = (torch.xlogy(soft, soft) - torch.xlogy(soft, best_constant)).sum(-1).mean()
    assert loss > 2.0  # nats: zero when every target sits at the centre of the zoomed views


def test_bf16_autocast_leaves_geometry_and_labels_in_fp32():
    """A bf16-mixed step places the scene and computes every target as an fp32 step does."""
    cfg = load_config(ARP_YAML, SMALL).execution
    model = ARP(cfg, DataSpec(["x"], ["t"])).train()
    batch = scene_batch(16, seed=1)
    runs = []
    for precision in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == torch.bfloat16):
            runs.append(model.run(batch, train=True, noisy=True))
    for key in ("target", "quat", "bins", "center", "target2"):
        assert runs[0][key].dtype == runs[1][key].dtype and torch.equal(runs[0][key], runs[1][key]), key


def test_arp_trains_with_arps_lamb_where_zero_tensors_stay_zero():
    """bitsandbytes' LAMB with ARP's settings: decay on every tensor, and each step capped at the tensor's own
    norm, so ARP's zero-initialised tensors (its AdaLN modulations, its biases) never move."""
    import bitsandbytes

    cfg = load_config(ARP_YAML, SMALL)
    model = ARP(cfg.execution, DataSpec(["x"], ["t"])).train()
    optimizer = build_optimizer(build_param_groups({"execution": model}, None, cfg, 4), cfg)
    inner = optimizer.optimizers[0]
    assert isinstance(inner, bitsandbytes.optim.LAMB) and len(optimizer.optimizers) == 1
    assert {g["weight_decay"] for g in optimizer.param_groups} == {1e-4}
    zero = {n: p for n, p in model.named_parameters() if not p.any()}
    modulation = "head.cross.0.modulation.1.weight"
    assert modulation in zero and any(n.endswith("bias") for n in zero)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = scene_batch(4)
    for _ in range(3):
        optimizer.zero_grad()
        model(batch, task=True).loss.backward()
        optimizer.step()
    assert model.get_parameter(modulation).grad.abs().sum() > 0  # it has gradients, and still does not move
    assert all(not p.any() for p in zero.values())
    learning = [n for n, p in model.named_parameters() if n not in zero and p.grad is not None and p.grad.any()]
    assert len(learning) > 50 and all(not torch.equal(model.get_parameter(n), before[n]) for n in learning)


def test_an_observation_arp_cannot_read_is_one_clear_error():
    from mirror.errors import MirrorError
    from mirror.models.execution.arp import check_observation

    good = {"rgb": np.zeros((4, 16, 16, 3), np.uint8), "xyz": np.zeros((4, 16, 16, 3), np.float32),
            "proprio": np.zeros(3, np.float32)}
    check_observation(good)
    for bad, message in (({**good, "rgb": good["rgb"].transpose(0, 3, 1, 2)}, "move the channel axis last"),
                         ({**good, "rgb": good["rgb"] / 255.0}, "'rgb' is uint8"),
                         ({k: v for k, v in good.items() if k != "proprio"}, "missing proprio"),
                         ((good, {}), "a dict with 'rgb', 'xyz' and 'proprio'"),
                         ({**good, "proprio": np.zeros(2)}, r"'proprio' is \(3,\)")):
        with pytest.raises(MirrorError, match=message):
            check_observation(bad)
