"""ViCLIP against OpenGVLab/InternVideo (Data/InternVid/viclip): the official layout loads strictly, an 8-frame
forward equals a reference forward written here from the official code, frame order matters, the official
weight adaptations, stochastic depth and weight-decay exemptions, CLIP files (open_clip equivalence at T = 1),
masking, weight-loading errors, overfitting."""

import logging
import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from mirror.config import load_config
from mirror.errors import MirrorError
from mirror.models.protocol import DataSpec
from mirror.models.understanding.viclip import ViCLIP, ViCLIPConfig
from mirror.models.understanding.video_encoder import StochasticDepth
from mirror.training.checkpoint import read_checkpoint
from mirror.training.optim import build_param_groups
from tests.conftest import ROOT
from tests.test_arp import buffers_tree

SPEC = DataSpec(["open the top drawer", "open the bottom drawer", "close the jar"], ["open_drawer", "close_jar"])


def official_shapes(size):
    """The official checkpoint's keys and shapes, written out from the published layout."""
    v, vl, patch, grid, embed, t, tl = {
        "B/16": (768, 12, 16, 14, 512, 512, 12),
        "L/14": (1024, 24, 14, 16, 768, 768, 12),
        "tiny": (128, 2, 14, 4, 128, 128, 2),
    }[size]

    def blocks(prefix, w, layers):
        out = {}
        for i in range(layers):
            b = f"{prefix}.transformer.resblocks.{i}."
            out.update({
                b + "ln_1.weight": [w], b + "ln_1.bias": [w],
                b + "attn.in_proj_weight": [3 * w, w], b + "attn.in_proj_bias": [3 * w],
                b + "attn.out_proj.weight": [w, w], b + "attn.out_proj.bias": [w],
                b + "ln_2.weight": [w], b + "ln_2.bias": [w],
                b + "mlp.c_fc.weight": [4 * w, w], b + "mlp.c_fc.bias": [4 * w],
                b + "mlp.c_proj.weight": [w, 4 * w], b + "mlp.c_proj.bias": [w],
            })
        return out

    shapes = {
        "temp": [],
        "vision_encoder.conv1.weight": [v, 3, 1, patch, patch],
        "vision_encoder.class_embedding": [v],
        "vision_encoder.positional_embedding": [grid * grid + 1, v],
        "vision_encoder.temporal_positional_embedding": [1, 8, v],
        "vision_encoder.ln_pre.weight": [v], "vision_encoder.ln_pre.bias": [v],
        "vision_encoder.ln_post.weight": [v], "vision_encoder.ln_post.bias": [v],
        "vision_encoder.proj": [v, embed],
        "text_encoder.token_embedding.weight": [49408, t],
        "text_encoder.positional_embedding": [32, t],
        "text_encoder.ln_final.weight": [t], "text_encoder.ln_final.bias": [t],
        "text_encoder.text_projection": [t, embed],
    }
    shapes.update(blocks("vision_encoder", v, vl))
    shapes.update(blocks("text_encoder", t, tl))
    return shapes


def random_official(size, seed=0):
    """Official-layout weights with random values per key (small, so that the forward stays tame)."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(s, generator=gen) - 0.5) * 0.2 for k, s in official_shapes(size).items()}


def test_official_checkpoint_loads_strictly(tmp_path):
    state = random_official("B/16")
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size="B/16", checkpoint=str(path)), SPEC)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())  # a transposed square matrix would differ
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in state.values())


def test_the_u_branch_of_a_mirror_checkpoint_loads_as_pretrained_weights(tmp_path):
    """U pre-trained by `mirror train` (its Lightning checkpoint) starts another run's U, every tensor equal."""
    torch.manual_seed(0)
    source = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", frames=4), DataSpec(["pick up the nut"], ["t"]))
    state = {f"understanding.{k}": v for k, v in source.state_dict().items()}
    state["execution.head.weight"] = torch.zeros(3)  # the other branches of the checkpoint are not read
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "global_step": 10}, path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", frames=4, checkpoint=str(path)), SPEC)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in source.state_dict().items())
    longer = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", frames=8, checkpoint=str(path)), SPEC)  # as official
    assert longer.state_dict()["vision_encoder.temporal_positional_embedding"].shape[1] == 8
    with pytest.raises(MirrorError, match=r"last.ckpt: mirror \(U branch\) weights do not fit ViCLIP-B/16"):
        ViCLIP(ViCLIPConfig(name="viclip", size="B/16", checkpoint=str(path)), SPEC)


@pytest.mark.parametrize("size, millions", [("B/16", 149.6), ("L/14", 427.6)])
def test_official_layouts_and_sizes(size, millions):
    model = ViCLIP(ViCLIPConfig(name="viclip", size=size), SPEC)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith("recognition")}
    assert shapes == official_shapes(size)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.05)


def reference_video(state, video, heads):
    """The official VisionTransformer.forward (viclip_vision.py, eval, no masking) on an official state dict:
    per-frame class token and positions, the temporal embedding added per frame (its mean for one frame),
    tokens ordered patch-major, sequence-first blocks with QuickGELU, ln_post and `proj` on the class token."""
    w = {k.removeprefix("vision_encoder."): v for k, v in state.items() if k.startswith("vision_encoder.")}
    x = F.conv3d(video, w["conv1.weight"], stride=w["conv1.weight"].shape[2:])
    b, c, t, h, wd = x.shape
    x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * wd, c)
    x = torch.cat([w["class_embedding"] + torch.zeros(b * t, 1, c), x], 1) + w["positional_embedding"]
    cls, x = x[:b, :1], x[:, 1:]
    x = x.reshape(b, t, h * wd, c).permute(0, 2, 1, 3).reshape(b * h * wd, t, c)
    temporal = w["temporal_positional_embedding"]
    x = x + (temporal.mean(1) if t == 1 else temporal)
    x = torch.cat([cls, x.reshape(b, h * wd * t, c)], 1)
    x = F.layer_norm(x, (c,), w["ln_pre.weight"], w["ln_pre.bias"]).transpose(0, 1)  # sequence first
    for i in range(len({k.split(".")[2] for k in w if k.startswith("transformer.resblocks.")})):
        p = f"transformer.resblocks.{i}."
        y = F.layer_norm(x, (c,), w[p + "ln_1.weight"], w[p + "ln_1.bias"])
        q, k, v = (y @ w[p + "attn.in_proj_weight"].T + w[p + "attn.in_proj_bias"]).chunk(3, -1)
        q, k, v = (z.reshape(z.shape[0], b * heads, c // heads).transpose(0, 1) for z in (q, k, v))
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c // heads), -1) @ v
        x = x + a.transpose(0, 1).reshape(-1, b, c) @ w[p + "attn.out_proj.weight"].T + w[p + "attn.out_proj.bias"]
        y = F.layer_norm(x, (c,), w[p + "ln_2.weight"], w[p + "ln_2.bias"]) @ w[p + "mlp.c_fc.weight"].T
        y = y + w[p + "mlp.c_fc.bias"]
        x = x + (y * torch.sigmoid(1.702 * y)) @ w[p + "mlp.c_proj.weight"].T + w[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (c,), w["ln_post.weight"], w["ln_post.bias"])
    return x[0] @ w["proj"]


def test_eight_frame_forward_equals_the_official_forward(tmp_path):
    state = random_official("tiny")
    gen = torch.Generator().manual_seed(1)
    for key in state:  # sharp attention and a strong temporal embedding: the pairing of frames and times matters
        if "attn.in_proj_weight" in key or "temporal" in key:
            state[key] = torch.randn(state[key].shape, generator=gen) * (0.3 if "attn" in key else 1.0)
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(path)), SPEC).eval()
    ramp = torch.linspace(0, 200, 8).view(1, 8, 1, 1, 1)  # frames of different brightness
    video = (ramp + torch.randint(0, 50, (2, 8, 56, 56, 3))).to(torch.uint8)
    x = model.preprocess(video)
    with torch.no_grad():
        ours = model.vision_encoder(x)[1]
        assert torch.allclose(ours, reference_video(state, x, heads=4), atol=1e-5)
        assert (model.vision_encoder(x.flip(2))[1] - ours).abs().max() > 1e-3  # frame order matters
        one = model.vision_encoder(x[:, :, :1])[1]
        assert torch.allclose(one, reference_video(state, x[:, :, :1], heads=4), atol=1e-5)
        square = model.vision_encoder.transformer.resblocks[0].attn.out_proj.weight
        square.copy_(square.T.clone())  # a loader that transposed a square matrix would be caught
        assert (model.vision_encoder(x)[1] - ours).abs().max() > 1e-3


def test_official_weight_adaptations(tmp_path):
    state = random_official("tiny")
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    temporal = state["vision_encoder.temporal_positional_embedding"]
    fewer = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", frames=4, checkpoint=str(path)), SPEC)
    assert torch.equal(fewer.vision_encoder.temporal_positional_embedding, temporal[:, :4])  # truncated
    more = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", frames=12, checkpoint=str(path)), SPEC)
    expected = F.interpolate(temporal.transpose(1, 2), size=12, mode="linear").transpose(1, 2)
    assert torch.allclose(more.vision_encoder.temporal_positional_embedding, expected)  # more: interpolated
    small = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", image_size=28, checkpoint=str(path)), SPEC)
    spatial = state["vision_encoder.positional_embedding"]
    grid = spatial[1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(2, 2), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(4, -1)
    assert torch.allclose(small.vision_encoder.positional_embedding, torch.cat([spatial[:1], resized]))


def test_stochastic_depth_and_weight_decay_follow_the_official_training():
    cfg = load_config(ROOT / "configs/rlbench/viclip.yaml", ["understanding.size=tiny", "understanding.checkpoint=null",
                                                            "understanding.temperature=null"])
    model = ViCLIP(cfg.understanding, SPEC)
    rates = [(b.ls_1.p, b.ls_2.p) for b in model.vision_encoder.transformer.resblocks]
    assert rates == [(0.0, 0.0), (pytest.approx(0.1), pytest.approx(0.1))]
    drop = StochasticDepth(0.5).train()
    x = torch.ones(3, 40, 8)
    kept = drop(x)
    assert set(kept.unique().tolist()) <= {0.0, 2.0} and (kept == kept[:1]).all()  # per position, batch-wide
    assert torch.equal(drop.eval()(x), x)
    groups = build_param_groups({"understanding": model}, None, cfg, global_batch=1)
    names = {id(p): n for n, p in model.named_parameters()}
    exempt = {names[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"] if p.ndim != 1}
    assert exempt == {"temp", "vision_encoder.positional_embedding", "vision_encoder.temporal_positional_embedding",
                      "text_encoder.token_embedding.weight", "text_encoder.positional_embedding"}
    assert cfg.understanding.optimizer.weight_decay == 0.2  # as ViCLIP pretrains
    decayed = {names[id(p)] for g in groups if g["weight_decay"] == 0.2 for p in g["params"]}
    assert {"vision_encoder.conv1.weight", "vision_encoder.proj", "text_encoder.text_projection"} <= decayed


def test_open_clip_weights_give_open_clips_image_and_text_embeddings(tmp_path, caplog):
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True).eval()
    path = tmp_path / "clip.pt"
    torch.save(clip.state_dict(), path)
    with caplog.at_level(logging.WARNING):
        model = ViCLIP(ViCLIPConfig(name="viclip", size="B/16", frames=1, checkpoint=str(path)), SPEC).eval()
    assert "trained with GELU" in caplog.text  # a state dict may hold LAION's GELU-trained weights
    image = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        _, ours = model.vision_encoder(image[:, :, None])
        ours_text = model.encode_text(model.instruction_inputs)
        theirs_text = clip.encode_text(open_clip.tokenize(SPEC.instructions))
        assert torch.allclose(ours, clip.encode_image(image), atol=1e-5)
        assert torch.allclose(ours_text, theirs_text, atol=1e-5)


def as_clip(state):
    """Official ViCLIP-layout weights renamed as a CLIP image-text model holds them (OpenAI, open_clip)."""
    out = {"logit_scale": torch.tensor(4.6)}
    for key, value in state.items():
        if key in ("temp", "vision_encoder.temporal_positional_embedding"):
            continue
        if key.startswith("vision_encoder."):
            out["visual." + key.removeprefix("vision_encoder.")] = value[:, :, 0] if "conv1" in key else value
        elif key == "text_encoder.positional_embedding":
            out["positional_embedding"] = torch.cat([value, torch.rand(77 - len(value), value.shape[1])])
        else:
            out[key.removeprefix("text_encoder.")] = value
    return out


def test_openais_torchscript_clip_loads_without_the_gelu_warning(tmp_path, caplog):
    state = random_official("tiny")
    openai = {**as_clip(state), "input_resolution": torch.tensor(56), "context_length": torch.tensor(77),
              "vocab_size": torch.tensor(49408)}
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.script(buffers_tree(openai)).save(str(path))
    with caplog.at_level(logging.WARNING):
        model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(path)), SPEC)
    assert "GELU" not in caplog.text
    own = model.state_dict()
    kept = ("temp", "vision_encoder.temporal_positional_embedding")  # new in ViCLIP: their initialisation
    assert all(torch.equal(own[k], v) for k, v in state.items() if k not in kept)


@pytest.mark.parametrize(
    "state, message",
    [
        ({"something.else": torch.zeros(2)}, "neither ViCLIP"),
        ({"vision_encoder.conv1.weight": torch.zeros(768, 3, 1, 16, 16)}, "missing keys, first"),
    ],
)
def test_bad_weights_fail_with_one_line(tmp_path, state, message):
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(MirrorError, match=message) as err:
        ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(path)), SPEC)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_shape_mismatch_names_the_key(tmp_path):
    tiny = ViCLIP(ViCLIPConfig(name="viclip", size="tiny"), SPEC)
    state = dict(tiny.state_dict())
    state["vision_encoder.proj"] = torch.zeros(128, 64)
    path = tmp_path / "shape.pt"
    torch.save({"model": state}, path)
    with pytest.raises(MirrorError, match=r"shape of 'vision_encoder.proj' is \[128, 64\].*needs \[128, 128\]"):
        ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(path)), SPEC)
    with pytest.raises(MirrorError, match="weights file not found"):
        ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(tmp_path / "none.pt")), SPEC)


def test_clips_are_resized_as_float_images_are_within_rounding():
    model = ViCLIP(ViCLIPConfig(size="tiny", image_size=56), SPEC)
    video = torch.randint(0, 256, (2, 8, 64, 64, 3), dtype=torch.uint8)
    x = video.permute(0, 1, 4, 2, 3).flatten(0, 1).float() / 255  # the float path, ViCLIP's ImageNet mean and std
    x = F.interpolate(x, size=(56, 56), mode="bilinear", antialias=True).view(2, 8, 3, 56, 56).transpose(1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    diff = (model.preprocess(video) - (x - mean) / std) * std  # back in [0, 1] units
    assert diff.abs().max() <= 1.01 / 255 and diff.abs().mean() < 0.5 / 255


def test_masking_drops_patches_never_the_class_token():
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", mask_ratio=0.9), SPEC)
    enc = model.vision_encoder
    seen = []
    enc.ln_pre.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    video = torch.randint(0, 255, (2, 8, 56, 56, 3), dtype=torch.uint8)
    model.train()
    model.encode_video(video)
    patches = 8 * 4 * 4  # tiny: 56 px frames, 14 px patches
    assert seen[-1].shape[1] == 1 + patches - int(0.9 * patches)  # the official count of masked tokens
    cls = enc.class_embedding + enc.positional_embedding[0]
    assert torch.allclose(seen[-1][:, 0], cls.expand(2, -1))
    kept = seen[-1][:, 1:]
    all_tokens = enc.tokens(model.preprocess(video))
    matches = (kept[:, :, None] - all_tokens[:, None]).abs().amax(-1) < 1e-6
    assert matches.any(-1).all() and (matches.sum(-1) == 1).all()  # kept tokens are distinct real patches
    model.eval()
    a, b = model.encode_video(video), model.encode_video(video)
    assert seen[-1].shape[1] == 1 + patches
    assert torch.equal(a[1], b[1])


def overfit(model: ViCLIP, inputs: dict, steps: int) -> ViCLIP:
    """`steps` AdamW steps of U's task loss on one batch; the model in evaluation mode after."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for _ in range(steps):
        out = model(inputs, task=True)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model.eval()


def test_overfitting_drives_recognition_to_100_percent():
    torch.manual_seed(0)
    spec = DataSpec([f"pick up the {c} ball" for c in ("red", "green", "blue", "purple", "yellow", "grey")], ["pick"])
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", temperature=0.05), spec)
    video = torch.randint(0, 255, (6, 8, 56, 56, 3), dtype=torch.uint8)
    inputs = {"video": video, "instruction": torch.arange(6), "task": torch.zeros(6, dtype=torch.long)}
    overfit(model, inputs, 40)
    with torch.no_grad():
        metrics = model(inputs, task=True).metrics
    assert metrics["recognition"].compute().item() == 1.0
    assert metrics["recognition/pick"].compute().item() == 1.0


def test_rlbench_viclip_config_trains_and_evaluates_zero_shot(cli, tmp_path):
    from mirror.benchmarks.rlbench.synthetic import write_episode

    root = tmp_path / "raw"
    for i in range(6):
        write_episode(root, "open_drawer", i, frames=20, variation=i % 3, seed=i)
    common = ["understanding.size=tiny", "understanding.checkpoint=null", f"data.root={root}", "data.val_root=null",
              f"data.cache={tmp_path / 'cache'}", "data.tasks=[open_drawer]", "data.episodes=4", "data.val_episodes=2",
              "data.batch_size=4", "data.val_batch_size=4", "data.num_workers=0", "data.cache_workers=1",
              "trainer.devices=1", "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.max_steps=2",
              "trainer.val_every=2", "trainer.ckpt_every=2", "optim.warmup_steps=1", "logger=csv",
              f"run.root={tmp_path}", "trainer.progress_bar=false"]
    code, out, err = cli("eval", str(ROOT / "configs/rlbench/viclip.yaml"), *common, "run.name=zs")
    assert code == 0, err
    assert "val/u/recognition" in out and "val/u/recognition/open_drawer" in out
    code, out, err = cli("train", str(ROOT / "configs/rlbench/viclip.yaml"), *common, "run.name=ft")
    assert code == 0, err
    state = read_checkpoint(tmp_path / "ft" / "checkpoints" / "last.ckpt")["state_dict"]
    assert any(k.startswith("understanding.vision_encoder.") for k in state)
    assert not any(k.startswith(("execution.", "alignment.")) for k in state)
