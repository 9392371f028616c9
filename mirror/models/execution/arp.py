"""ARP on RVT-2's MVT: the embodied-execution model E for RLBench (next key end-effector pose).

Follows mlzxy/arp (rlb/autoregressive_policy.py). Points outside `scene_bounds` are dropped and the rest
placed in the cube [-1, 1]^3. Coarse to fine: stage 1 renders the cloud into three views, MVT and the policy
head predict one heatmap per view, and the 3-D point that best explains them; stage 2 re-renders the whole
cloud 4x zoomed around it (in training around the true point plus noise) for a finer point. Then the causal
sequence predicts the rotation bins, the gripper state and the collision flag. Losses: heatmap cross-entropy
against Gaussian targets (both stages) and cross-entropy for rotation, grip and collision, equal weights
(the heatmap terms are reported as KL divergences: the cross-entropy less the target's own entropy, so that
they reach 0).

The alignment feature e is the policy's last-block output (`feature`): `sequence` (default) averages the
content stream over the whole causal sequence, the policy's summary of what it sees and does; `prompt` over
the six prompt tokens (what it sees at the chosen point); `points` averages the six screen-point tokens of
the cross blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.config import ExecutionConfig, OptimizerConfig, OptimizerKind
from mirror.config.inputs import reads
from mirror.errors import ConfigError, MirrorError
from mirror.files import atomic_write
from mirror.models import minilm
from mirror.models.execution import geometry as geo
from mirror.models.execution.arp_weights import load_weights, ours_from_file, shapes
from mirror.models.execution.language import WIDTH, rn50_text_tower, token_features
from mirror.models.execution.mvt import MVT, MVTSize
from mirror.models.execution.policy import PROMPTS, TYPES, ARPHead
from mirror.models.execution.renderer import render
from mirror.models.minilm import TextSource
from mirror.models.protocol import BranchOutput, DataSpec


class ARPFeature(str, Enum):
    sequence = "sequence"
    prompt = "prompt"
    points = "points"


@dataclass
class ARPConfig(ExecutionConfig):
    image_size: int = 224  # rendered views
    patch: int = 14
    mvt_channels: int = 64
    mvt_width: int = 512
    mvt_depth: int = 8
    mvt_heads: int = 8
    embed: int = 128  # policy embedding; MVT output channels are 2 * mvt_channels and must match
    policy_heads: int = 8
    policy_mlp: int = 512
    cross_layers: int = 4
    self_layers: int = 4
    upsample_width: int = 160
    dropout: float = 0.1
    # x0, y0, z0, x1, y1, z1 (m); by default RLBench's workspace, as in PerAct and ARP
    scene_bounds: list[float] = field(default_factory=lambda: [-0.3, -0.5, 0.6, 0.7, 0.5, 1.6])
    zoom: float = 4.0  # stage-2 magnification
    zoom_noise: float = 0.1  # cube units of uniform noise on the stage-2 centre in every training step (ARP)
    rotation_jitter: list[int] = field(default_factory=lambda: [-2, -1, 0, -1, -2])  # bins added to the
    rotation_jitter_p: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.4, 0.2, 0.1])  # teacher inputs
    augment: bool = True  # SE(3) perturbation of scene and target in training (ARP's transform_augmentation)
    jitter: bool = True  # rotation jitter of the teacher-forced inputs in training (ARP's rotation_aug)
    shift: float = 0.125  # translation range as a fraction of the scene bounds' extent per axis
    yaw: float = 45.0  # degrees
    rgb_noise: float = 0.05  # uniform colour noise of up to this amplitude in every training step (ARP)
    feature: ARPFeature = ARPFeature.sequence
    language: TextSource = TextSource.clip  # token features of CLIP RN50's text tower (ARP), or of frozen MiniLM
    clip_checkpoint: str | None = reads()  # OpenAI's RN50.pt or an open_clip RN50, for the language features
    minilm: str | None = reads()  # a sentence-transformers folder for `language: minilm`; default: the bundled one
    checkpoint: str | None = reads()  # ARP weights: ARP's released RLBench checkpoint, or `mirror convert arp` output
    lr: float = 1.25e-5
    lr_per_sample: bool = True  # lr x global batch size, as ARP trains
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name=OptimizerKind.lamb, weight_decay=1e-4, decay_all=True))


def check(cfg: ARPConfig) -> None:
    """Value checks the config types cannot express."""
    lo, hi = cfg.scene_bounds[:3], cfg.scene_bounds[3:]
    rules = [
        ("embed", cfg.embed == 2 * cfg.mvt_channels, "must equal 2 * execution.mvt_channels"),
        ("scene_bounds", len(cfg.scene_bounds) == 6 and all(a < b for a, b in zip(lo, hi, strict=False)),
         "must be x0, y0, z0, x1, y1, z1 with each minimum below its maximum"),
        ("rotation_jitter_p", len(cfg.rotation_jitter_p) == len(cfg.rotation_jitter)
         and min(cfg.rotation_jitter_p) >= 0 and sum(cfg.rotation_jitter_p) > 0,
         "must give one non-negative weight per execution.rotation_jitter value"),
    ]
    for key, ok, why in rules:
        if not ok:
            raise ConfigError(f"bad value for 'execution.{key}': {why}")


def networks(cfg: ARPConfig) -> tuple[nn.ModuleList, ARPHead]:
    """The two MVTs (one per stage) and the policy head of a config."""
    size = MVTSize(image=cfg.image_size, patch=cfg.patch, channels=cfg.mvt_channels, width=cfg.mvt_width,
                   depth=cfg.mvt_depth, heads=cfg.mvt_heads, head_dim=cfg.mvt_width // cfg.mvt_heads,
                   language=minilm.WIDTH if cfg.language == TextSource.minilm else WIDTH, dropout=cfg.dropout)
    head = ARPHead(cfg.embed, cfg.policy_heads, cfg.policy_mlp, cfg.cross_layers, cfg.self_layers,
                   cfg.upsample_width, cfg.patch, cfg.dropout)
    return nn.ModuleList([MVT(size), MVT(size)]), head


def convert(source: str | Path, target: str | Path) -> int:
    """Write ARP's released RLBench checkpoint as our state dict (the default `arp` architecture); returns the
    number of tensors. The target appears only once it is complete."""
    with torch.device("meta"):
        mvt, head = networks(ARPConfig(name="arp"))
    state = ours_from_file(shapes(nn.ModuleDict({"mvt": mvt, "head": head})), source)
    with atomic_write(Path(target), "wb") as f:
        torch.save(state, f)
    return len(state)


def check_observation(observation: dict) -> None:
    """One clear error for an observation ARP cannot read: `rgb` (uint8) and `xyz` of shape (cameras, H, W, 3),
    `proprio` (3,)."""
    missing = [k for k in ("rgb", "xyz", "proprio") if k not in observation] if isinstance(observation, dict) \
        else ["rgb", "xyz", "proprio"]
    if missing:
        raise MirrorError(f"ARP acts on a dict with 'rgb', 'xyz' and 'proprio'; missing {', '.join(missing)}")
    rgb, xyz = np.asarray(observation["rgb"]), np.asarray(observation["xyz"])
    for name, x in (("rgb", rgb), ("xyz", xyz)):
        if x.ndim != 4 or x.shape[-1] != 3:
            hint = ": move the channel axis last" if x.ndim == 4 and x.shape[1] == 3 else ""
            raise MirrorError(f"ARP's '{name}' is (cameras, H, W, 3); got {x.shape}{hint}")
    if rgb.dtype != np.uint8 or rgb.shape != xyz.shape:
        raise MirrorError(f"ARP's 'rgb' is uint8 (0 to 255) of the shape of 'xyz' {xyz.shape}; got {rgb.dtype} "
                          f"{rgb.shape}")
    if np.asarray(observation["proprio"]).shape != (3,):
        raise MirrorError(f"ARP's 'proprio' is (3,): gripper open and the two finger joints; got "
                          f"{np.asarray(observation['proprio']).shape}")


class ARP(nn.Module):
    config_class = ARPConfig

    def __init__(self, cfg: ARPConfig, spec: DataSpec):
        super().__init__()
        check(cfg)
        self.cfg = cfg
        self.mvt, self.head = networks(cfg)
        if cfg.language == TextSource.minilm:
            self._features = partial(minilm.token_features, path=cfg.minilm)
        else:
            self._features = partial(token_features, rn50_text_tower(cfg.clip_checkpoint))  # frozen, no state
        self.register_buffer("language", self._features(spec.instructions), persistent=False)
        self.feature_dim = cfg.embed
        if cfg.checkpoint:
            load_weights(self, cfg.checkpoint)

    def text_features(self, texts: list[str]) -> Tensor:
        """Language features of instructions outside the data's list (e.g. at evaluation)."""
        return self._features(texts).to(self.language.device)

    @torch.no_grad()
    def step(self, observation: dict, instruction: str, state: dict | None = None) -> tuple[np.ndarray, dict]:
        """The next key pose (9 numbers, see `action`) for one observation: `rgb` and `xyz` (cameras, H, W, 3),
        `proprio` (3,). ARP keeps no memory; `state` caches the instructions' language features."""
        check_observation(observation)
        state = {} if state is None else state
        if instruction not in state:
            state[instruction] = self.text_features([instruction])
        device = self.language.device
        batch = {k: torch.as_tensor(np.asarray(observation[k]))[None].to(device) for k in ("rgb", "xyz", "proprio")}
        batch["language"] = state[instruction]
        return self.act(batch)[0].cpu().numpy(), state

    @staticmethod
    def scene(inputs: dict) -> tuple[Tensor, Tensor]:
        """(B, N, 3) world points and (B, N, 3) colours in [0, 1] from the 4 cameras."""
        points = inputs["xyz"].float().flatten(1, -2)
        colours = inputs["rgb"].float().flatten(1, -2) / 255
        return points, colours

    def stage(self, k: int, cube: Tensor, colours: Tensor, valid: Tensor, proprio: Tensor,
              language: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        maps = self.mvt[k](render(cube, colours, valid, self.cfg.image_size), proprio, language)
        logits, tokens = self.head.heatmaps(maps, k)
        return maps, logits, tokens

    def jitter(self, bins: Tensor) -> Tensor:
        """Teacher-forced rotation inputs: the bins plus a draw from ARP's jitter distribution."""
        values = torch.tensor(self.cfg.rotation_jitter, device=bins.device)
        weights = torch.tensor(self.cfg.rotation_jitter_p, dtype=torch.float, device=bins.device)
        draw = torch.multinomial(weights, bins.numel(), replacement=True).view_as(bins)
        return (bins + values[draw]) % geo.BINS

    def placed(self, inputs: dict, train: bool, noisy: bool) -> dict[str, Tensor]:
        """The scene in the cube and, with `train`, the targets: points, colours, validity and the target point,
        orientation and rotation bins, with ARP's training noise when `noisy` (SE(3) by `augment`, RGB noise
        always). Points outside the bounds are dropped first (`geo.compact`). Geometry and labels are computed in
        float32 whatever the autocast precision."""
        cfg, bounds = self.cfg, self.cfg.scene_bounds
        points, colours = self.scene(inputs)
        out: dict[str, Tensor] = {}
        if train:
            pos, quat = inputs["pose"][:, :3].float(), inputs["pose"][:, 3:].float()
            if noisy and cfg.augment:
                points, pos, quat = geo.augment(points, pos, quat, bounds, shift=cfg.shift, yaw_degrees=cfg.yaw)
            out["target"], out["quat"] = geo.to_cube(pos, bounds), geo.canonical(quat)
            out["bins"] = geo.quat_to_bins(out["quat"])
        valid, points, colours = geo.compact(geo.in_bounds(points, bounds), points, colours)
        if train and noisy and cfg.rgb_noise > 0:
            s = cfg.rgb_noise * torch.rand(colours.shape[0], 1, 1, device=colours.device)
            colours = colours + (torch.rand_like(colours) * 2 - 1) * s
        out["valid"], out["cube"], out["colours"] = valid, geo.to_cube(points, bounds), colours
        return out

    def run(self, inputs: dict, train: bool, noisy: bool = False) -> dict[str, Tensor]:
        """Both stages and the sequence: with `train`, teacher-forced on the targets (with ARP's training noise
        when `noisy`: the perturbations of `placed`, a noisy stage-2 centre, rotation jitter); otherwise greedy
        from the predicted points."""
        cfg = self.cfg
        fp32 = torch.autocast(inputs["xyz"].device.type, enabled=False)  # geometry and labels stay float32
        with fp32:
            out = self.placed(inputs, train, noisy)
        cube, colours, valid = out.pop("cube"), out.pop("colours"), out.pop("valid")
        proprio = inputs["proprio"].float()
        language = self.language[inputs["instruction"]] if "language" not in inputs else inputs["language"]
        _, out["logits1"], tokens1 = self.stage(0, cube, colours, valid, proprio, language)
        with fp32:
            if train:
                noise = (torch.rand_like(out["target"]) * 2 - 1) * cfg.zoom_noise if noisy else 0
                center = out["target"] + noise
            else:
                center = geo.heatmaps_to_point(out["logits1"].float())
            zoomed = (cube - center[:, None]) * cfg.zoom  # the whole cloud: what lies in front stays in view
        maps2, out["logits2"], tokens2 = self.stage(1, zoomed, colours, valid, proprio, language)
        out["center"] = center
        out["points"] = torch.cat([tokens1, tokens2], 1)
        with fp32:
            if train:
                out["target2"] = (out["target"] - center) * cfg.zoom
                pixels = geo.point_pixels(out["target2"], cfg.image_size)
            else:
                out["point2"] = geo.heatmaps_to_point(out["logits2"].float())
                pixels = geo.point_pixels(out["point2"], cfg.image_size)
        prompts = self.head.prompts(maps2, pixels, cfg.patch)
        if train:
            rotation = self.jitter(out["bins"]) if noisy and cfg.jitter else out["bins"]
            values = [*rotation.unbind(1), inputs["gripper_open"].round().long(),
                      inputs["ignore_collisions"].round().long()]
            out["hidden"], out["queries"] = self.head.sequence(prompts, values, range(PROMPTS, len(TYPES)))
        else:
            out["pred_bins"], out["pred_grip"], out["pred_collision"], out["hidden"] = self.head.decode(prompts)
        out["prompt_hidden"] = out["hidden"][:, :PROMPTS]
        return out

    def feature(self, out: dict[str, Tensor]) -> Tensor:
        if self.cfg.feature == ARPFeature.prompt:
            return out["prompt_hidden"].mean(1)
        if self.cfg.feature == ARPFeature.points:
            return out["points"].mean(1)
        return out["hidden"].mean(1)

    def losses(self, out: dict[str, Tensor], inputs: dict) -> dict[str, Tensor]:
        size = self.cfg.image_size
        terms = {}
        for k, (logits, target) in enumerate(((out["logits1"], out["target"]), (out["logits2"], out["target2"]))):
            soft = geo.gaussian_heatmaps(geo.point_pixels(target, size), size).flatten(2)
            # cross-entropy minus the targets' own entropy (same gradients; 0 when the fit is perfect)
            log_ratio = torch.xlogy(soft, soft) - soft * logits.flatten(2).log_softmax(-1)
            terms[f"heatmap{k + 1}"] = log_ratio.sum(-1).mean()
        preds = self.head.logits(out["queries"])
        for i, axis in enumerate("xyz"):
            terms[f"rot_{axis}"] = F.cross_entropy(preds[i], out["bins"][:, i])
        terms["grip"] = F.cross_entropy(preds[3], inputs["gripper_open"].round().long())
        terms["collision"] = F.cross_entropy(preds[4], inputs["ignore_collisions"].round().long())
        return terms

    def forward(self, inputs: dict, task: bool) -> BranchOutput:
        """inputs: `rgb` (B, 4, H, W, 3) uint8, `xyz` (B, 4, H, W, 3) world points, `proprio` (B, 3),
        `instruction` (B,), and for the task loss `pose` (B, 7), `gripper_open`, `ignore_collisions`."""
        if self.training and task:
            out = self.run(inputs, train=True, noisy=True)
            terms = self.losses(out, inputs)
            metrics = {f"loss_{k}": v.detach() for k, v in terms.items()}
            return BranchOutput(self.feature(out), sum(terms.values()), metrics)
        out = self.run(inputs, train=False)
        if not task:
            return BranchOutput(self.feature(out))
        loss = sum(self.losses(self.run(inputs, train=True), inputs).values())  # teacher-forced, no noise
        action = self.action(out)
        target = inputs["pose"][:, :3].float()
        metrics = {
            "trans_err_cm": 100 * (action[:, :3] - target).norm(dim=-1).mean(),
            "trans_err1_cm": 100 * (geo.from_cube(out["center"], self.cfg.scene_bounds) - target).norm(dim=-1).mean(),
            "rot_acc": (out["pred_bins"] == geo.quat_to_bins(inputs["pose"][:, 3:].float())).all(-1).float().mean(),
            "grip_acc": (out["pred_grip"] == inputs["gripper_open"].round().long()).float().mean(),
        }
        return BranchOutput(self.feature(out), loss, metrics)

    def action(self, out: dict[str, Tensor]) -> Tensor:
        """(B, 9) RLBench actions: xyz, quaternion xyzw (w >= 0), gripper open, ignore collisions."""
        cube = out["point2"] / self.cfg.zoom + out["center"]
        quat = geo.bins_to_quat(out["pred_bins"])
        return torch.cat([geo.from_cube(cube, self.cfg.scene_bounds), quat, out["pred_grip"][:, None].float(),
                          out["pred_collision"][:, None].float()], -1)

    @torch.no_grad()
    def act(self, inputs: dict) -> Tensor:
        """Greedy next key pose for a batch of observations (with `language` or `instruction`)."""
        return self.action(self.run(inputs, train=False))
