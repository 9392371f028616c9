"""ViCLIP: official shapes, open_clip equivalence at T = 1, masking, weight-loading errors, overfitting."""

import open_clip
import pytest
import torch

from mirror.errors import MirrorError
from mirror.models.protocol import DataSpec
from mirror.models.understanding.viclip import ViCLIP, ViCLIPConfig
from mirror.models.understanding.weights import interpolate_temporal
from mirror.training.checkpoint import read_checkpoint
from tests.conftest import ROOT

SPEC = DataSpec(["open the top drawer", "open the bottom drawer", "close the jar"], ["open_drawer", "close_jar"])


def official_shapes(size):
    """The official checkpoint's keys and shapes, written out from the published layout."""
    v, vl, patch, grid, embed, t, tl = {
        "B/16": (768, 12, 16, 14, 512, 512, 12),
        "L/14": (1024, 24, 14, 16, 768, 768, 12),
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


@pytest.mark.parametrize("size, millions", [("B/16", 149.6), ("L/14", 427.6)])
def test_official_checkpoint_loads_strictly(tmp_path, size, millions):
    shapes = official_shapes(size)
    state = {k: torch.full(s, i * 1e-4) for i, (k, s) in enumerate(shapes.items())}  # distinct value per key
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size=size, checkpoint=str(path)), SPEC)
    assert sum(p.numel() for p in model.parameters()) == sum(torch.Size(s).numel() for s in shapes.values())
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.05)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())


def test_temporal_embedding_is_interpolated(tmp_path):
    state = {k: torch.randn(s) if s else torch.tensor(0.02) for k, s in official_shapes("B/16").items()}
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size="B/16", frames=4, checkpoint=str(path)), SPEC)
    got = model.vision_encoder.temporal_positional_embedding
    assert got.shape == (1, 4, 768)
    assert torch.allclose(got, interpolate_temporal(state["vision_encoder.temporal_positional_embedding"], 4))
    ramp = torch.arange(8.0).view(1, 8, 1)
    assert torch.allclose(interpolate_temporal(ramp, 4).flatten(), torch.tensor([0.5, 2.5, 4.5, 6.5]))


def test_open_clip_weights_give_open_clips_image_and_text_embeddings(tmp_path):
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True).eval()
    path = tmp_path / "clip.pt"
    torch.save(clip.state_dict(), path)
    model = ViCLIP(ViCLIPConfig(name="viclip", size="B/16", frames=1, checkpoint=str(path)), SPEC).eval()
    image = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        _, ours = model.vision_encoder(image[:, :, None])
        ours_text = model.encode_text(model.instruction_tokens)
        theirs_text = clip.encode_text(open_clip.tokenize(SPEC.instructions))
        assert torch.allclose(ours, clip.encode_image(image), atol=1e-5)
        assert torch.allclose(ours_text, theirs_text, atol=1e-5)


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


def test_masking_drops_patches_never_the_class_token():
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", mask_ratio=0.9), SPEC)
    enc = model.vision_encoder
    seen = []
    enc.ln_pre.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    video = torch.randint(0, 255, (2, 8, 56, 56, 3), dtype=torch.uint8)
    model.train()
    model.encode_video(video)
    patches = 8 * 4 * 4  # tiny: 56 px frames, 14 px patches
    assert seen[-1].shape[1] == 1 + round(patches * 0.1)
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


def test_overfitting_drives_recognition_to_100_percent():
    torch.manual_seed(0)
    spec = DataSpec([f"pick up the {c} ball" for c in ("red", "green", "blue", "purple", "yellow", "grey")], ["pick"])
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", temperature=0.05), spec)
    video = torch.randint(0, 255, (6, 8, 56, 56, 3), dtype=torch.uint8)
    inputs = {"video": video, "instruction": torch.arange(6), "task": torch.zeros(6, dtype=torch.long)}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    for _ in range(40):
        out = model(inputs, task=True)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        metrics = model(inputs, task=True).metrics
    assert metrics["recognition"].compute().item() == 1.0
    assert metrics["recognition/pick"].compute().item() == 1.0


def test_rlbench_viclip_config_trains_and_evaluates_zero_shot(cli, tmp_path):
    from mirror.data.rlbench.synthetic import write_episode

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
