"""MiniLM (frozen, the bundled all-MiniLM-L6-v2) as ARP's language features and as U's text side."""

import pytest
import torch
import torch.nn.functional as F

from mirror.config import load_config
from mirror.errors import MirrorError
from mirror.models import minilm
from mirror.models.execution.arp import ARP
from mirror.models.protocol import DataSpec
from mirror.models.understanding.viclip import ViCLIP, ViCLIPConfig
from tests.conftest import ROOT
from tests.test_arp import ARP_YAML, SMALL, scene_batch
from tests.test_viclip import overfit, random_official

TEXTS = ["open the drawer on the left", "pull the drawer on the left open", "lock the door"]


def test_token_features_pool_to_minilms_own_sentence_embeddings():
    tokens = minilm.token_features(TEXTS)
    assert tokens.shape == (3, minilm.CONTEXT, minilm.WIDTH)
    real = tokens.abs().sum(-1) > 0
    assert real[:, 0].all() and not real[:, -1].any()  # [CLS] first, zeros after [SEP]
    pooled = F.normalize(tokens.sum(1) / real.sum(1, keepdim=True), dim=-1)
    torch.testing.assert_close(pooled, minilm.sentence_features(TEXTS), atol=1e-5, rtol=0)


def test_minilm_carries_meaning_the_paraphrase_is_nearer_than_another_task():
    s = minilm.sentence_features(TEXTS)
    assert s[0] @ s[1] > s[0] @ s[2] + 0.2


def test_a_folder_that_is_not_a_minilm_is_one_line(tmp_path):
    with pytest.raises(MirrorError, match="not a sentence-transformers folder") as err:
        minilm.sentence_features(["x"], str(tmp_path))
    assert "\n" not in str(err.value)


def test_arp_reads_minilm_token_features_and_trains_on_them():
    spec = DataSpec(TEXTS, ["drawer", "door"])
    cfg = load_config(ARP_YAML, [*SMALL, "execution.language=minilm"]).execution
    model = ARP(cfg, spec).train()
    assert model.language.shape == (3, minilm.CONTEXT, minilm.WIDTH)
    torch.testing.assert_close(model.language, minilm.token_features(TEXTS))
    assert model.mvt[0].language[0].in_features == minilm.WIDTH
    torch.testing.assert_close(model.text_features(["lock the door"]), model.language[2:])
    batch = scene_batch(2)
    batch["instruction"] = torch.tensor([0, 2])
    out = model(batch, task=True)
    out.loss.backward()
    assert model.mvt[0].language[0].weight.grad.abs().sum() > 0
    state = model.state_dict()
    assert not any("language" == k or k.startswith("_") for k in state)  # MiniLM is not part of the weights


def test_viclip_with_minilm_text_trains_only_the_projection_and_recognises_paraphrases():
    torch.manual_seed(0)
    spec = DataSpec(TEXTS, ["drawer", "door"])
    model = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", text="minilm", temperature=0.05), spec)
    assert isinstance(model.text_encoder, torch.nn.Linear) and model.text_encoder.in_features == minilm.WIDTH
    torch.testing.assert_close(model.instruction_inputs, minilm.sentence_features(TEXTS))
    groups = {g.name: g.params for g in model.param_groups()}
    assert {id(p) for p in groups["text"]} == {id(model.text_encoder.weight), id(model.text_encoder.bias)}
    video = torch.randint(0, 255, (3, 8, 56, 56, 3), dtype=torch.uint8)
    inputs = {"video": video, "instruction": torch.arange(3), "task": torch.tensor([0, 0, 1])}
    overfit(model, inputs, 30)
    assert model.recognise(video, TEXTS) == [0, 1, 2]
    assert model.embed_texts(["lock the door"]).shape == (1, 128)


def test_viclip_weights_load_the_video_tower_beside_minilm_text(tmp_path):
    state = random_official("tiny")
    path = tmp_path / "viclip.pth"
    torch.save({"model": state}, path)
    cfg = ViCLIPConfig(name="viclip", size="tiny", text="minilm", checkpoint=str(path))
    model = ViCLIP(cfg, DataSpec(TEXTS, ["t"]))
    own = model.state_dict()
    video = {k: v for k, v in state.items() if k.startswith("vision_encoder.")}
    assert video and all(torch.equal(own[k], v) for k, v in video.items())
    assert not any(k.startswith("text_encoder.") and k in state for k in own)


def test_the_minilm_experiment_builds_both_models_on_minilm():
    cfg = load_config(ROOT / "configs/metaworld/minilm.yaml")
    assert cfg.execution.language == "minilm" and cfg.understanding.text == "minilm"
    assert cfg.understanding.text_lr_scale == 1.0


def test_a_mirror_checkpoint_of_a_minilm_u_gives_its_projection_too(tmp_path):
    torch.manual_seed(1)
    source = ViCLIP(ViCLIPConfig(name="viclip", size="tiny", text="minilm"), DataSpec(TEXTS[:2], ["t"]))
    path = tmp_path / "u.ckpt"
    torch.save({"state_dict": {f"understanding.{k}": v for k, v in source.state_dict().items()}}, path)
    cfg = ViCLIPConfig(name="viclip", size="tiny", text="minilm", checkpoint=str(path))
    torch.testing.assert_close(ViCLIP(cfg, DataSpec(TEXTS, ["t"])).text_encoder.weight, source.text_encoder.weight)
    with pytest.raises(MirrorError, match=r"u.ckpt: mirror \(U branch\) weights do not fit ViCLIP-tiny: .* missing"):
        ViCLIP(ViCLIPConfig(name="viclip", size="tiny", checkpoint=str(path)), DataSpec(TEXTS, ["t"]))
