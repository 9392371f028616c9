"""ViCLIP, the action-understanding model U: a video-text CLIP that recognises which instruction a clip shows.

Video tower: `VideoEncoder`; text tower: open_clip's CLIP text transformer (context 32, EOT pooling,
QuickGELU). Fine-tuning loss: the bidirectional video-text InfoNCE at tau 0.05 (paper), with instructions
repeated in a batch as shared positives. Recognition: the instruction whose text embedding is closest to
the clip's, among all instructions of the data (their embeddings cached while the model is in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, TextTransformer
from torch import Tensor, nn
from torchmetrics.aggregation import MeanMetric

from mirror.align.loss import bidirectional_infonce
from mirror.config import UnderstandingConfig
from mirror.config.inputs import reads
from mirror.errors import ConfigError, MirrorError
from mirror.models import minilm
from mirror.models.minilm import TextSource
from mirror.models.protocol import BranchOutput, DataSpec, ParamGroup
from mirror.models.understanding.video_encoder import VideoEncoder
from mirror.models.understanding.weights import load_pretrained

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONTEXT_LENGTH = 32
VOCAB_SIZE = 49408

# Architecture of each size: the official ViCLIP-B/16 and -L/14, and a tiny one for CPU runs and tests.
SIZES: dict[str, dict[str, int]] = {
    "B/16": dict(image=224, patch=16, width=768, layers=12, heads=12, embed=512, text_width=512, text_layers=12,
                 text_heads=8),
    "L/14": dict(image=224, patch=14, width=1024, layers=24, heads=16, embed=768, text_width=768, text_layers=12,
                 text_heads=12),
    "tiny": dict(image=56, patch=14, width=128, layers=2, heads=4, embed=128, text_width=128, text_layers=2,
                 text_heads=4),
}


class Feature(str, Enum):
    """Which video-encoder output is the alignment feature u."""

    projected = "projected"  # after `proj`: the video embedding that is compared with text (default)
    pooled = "pooled"  # before `proj`: the class token after ln_post, the encoder's own width


@dataclass
class ViCLIPConfig(UnderstandingConfig):
    size: str = "B/16"
    frames: int = 8
    image_size: int | None = None  # None: the size's own (224 for B/16 and L/14)
    mask_ratio: float = 0.0  # share of patch tokens dropped in training (0.9 in ViCLIP pre-training)
    drop_path: float = 0.0  # stochastic depth of the last video block (0.1 in the official training)
    temperature: float | None = 0.05  # fixed tau of the fine-tuning loss; None: the learnt `temp`
    feature: Feature = Feature.projected
    checkpoint: str | None = reads()  # official ViCLIP or open_clip CLIP weights (see weights.py)
    text: TextSource = TextSource.clip  # the CLIP text tower (paper), or frozen MiniLM under a trained projection
    minilm: str | None = reads()  # a sentence-transformers folder for `text: minilm`; default: the bundled one
    freeze_text: bool = False
    text_lr_scale: float = 0.05  # text tower lr as a fraction of `lr`
    lr: float = 1e-5


class ViCLIP(nn.Module):
    config_class = ViCLIPConfig

    def __init__(self, cfg: ViCLIPConfig, spec: DataSpec):
        super().__init__()
        if cfg.size not in SIZES:
            raise ConfigError(f"understanding.size '{cfg.size}' is not one of {', '.join(SIZES)}")
        s = SIZES[cfg.size]
        self.cfg, self.spec = cfg, spec
        self.image_size = cfg.image_size or s["image"]
        patch = s["patch"]
        if self.image_size % patch:  # before any tensor is made: one line, not VideoEncoder's traceback
            near = max(1, round(self.image_size / patch)) * patch
            raise ConfigError(f"understanding.image_size={self.image_size} is not a multiple of ViCLIP {cfg.size}'s "
                              f"patch size {patch} (e.g. {near})")
        self.vision_encoder = VideoEncoder(
            self.image_size, s["patch"], s["width"], s["layers"], s["heads"], cfg.frames, s["embed"], cfg.drop_path
        )
        if cfg.text == TextSource.minilm:
            self.text_encoder = nn.Linear(minilm.WIDTH, s["embed"])  # over MiniLM's frozen sentence embeddings
        else:
            self.text_encoder = TextTransformer(
                context_length=CONTEXT_LENGTH, vocab_size=VOCAB_SIZE, width=s["text_width"], heads=s["text_heads"],
                layers=s["text_layers"], output_dim=s["embed"], act_layer=QuickGELU,
            )
        self.temp = nn.Parameter(torch.tensor(0.01))
        self.feature_dim = s["embed"] if cfg.feature == Feature.projected else s["width"]
        self.register_buffer("instruction_inputs", self.text_inputs(spec.instructions), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.recognition = MeanMetric()
        self.recognition_by_task = nn.ModuleList(MeanMetric() for _ in spec.tasks)
        self._text_cache: Tensor | None = None
        if cfg.checkpoint:
            load_pretrained(self, cfg.checkpoint)
        if cfg.freeze_text:
            self.text_encoder.requires_grad_(False)
        if cfg.temperature is not None:
            self.temp.requires_grad_(False)

    @staticmethod
    def no_weight_decay() -> set[str]:
        """Parameters the official training exempts from weight decay (besides vectors)."""
        return {"temp", "vision_encoder.class_embedding", "vision_encoder.positional_embedding",
                "vision_encoder.temporal_positional_embedding", "text_encoder.token_embedding.weight",
                "text_encoder.positional_embedding"}

    def param_groups(self) -> list[ParamGroup]:
        video = [p for n, p in self.named_parameters() if not n.startswith("text_encoder.") and p.requires_grad]
        text = [p for p in self.text_encoder.parameters() if p.requires_grad]
        return [ParamGroup("video", video, 1.0), ParamGroup("text", text, self.cfg.text_lr_scale)]

    def preprocess(self, video: Tensor) -> Tensor:
        """uint8 clips (B, T, H, W, 3) -> normalised float (B, 3, T, S, S) at the model's input size S."""
        b, t, h, w, _ = video.shape
        x = video.permute(0, 1, 4, 2, 3).flatten(0, 1)
        if x.device.type != "cpu":  # CPU resizes uint8 images directly, 4-5x faster (rounded to 1/255)
            x = x.float()
        if (h, w) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        x = x.float().view(b, t, 3, self.image_size, self.image_size).transpose(1, 2) / 255
        return (x - self.mean) / self.std

    def encode_video(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """(pooled, projected) video features; patch masking only in training."""
        ratio = self.cfg.mask_ratio if self.training else 0.0
        return self.vision_encoder(self.preprocess(video), ratio)

    def text_inputs(self, texts: list[str]) -> Tensor:
        """What the text side reads: CLIP token ids (N, 32), or MiniLM's sentence embeddings (N, 384)."""
        if self.cfg.text == TextSource.minilm:
            return minilm.sentence_features(texts, self.cfg.minilm)
        return open_clip.tokenizer.SimpleTokenizer(context_length=CONTEXT_LENGTH)(texts)

    def encode_text(self, inputs: Tensor) -> Tensor:
        """Text embeddings (before normalisation) of `text_inputs`."""
        return self.text_encoder(inputs)

    def instruction_embeddings(self) -> Tensor:
        """Unit text embeddings of every instruction of the data, computed once per evaluation."""
        if self._text_cache is None or self.training:
            with torch.no_grad():
                chunks = [self.encode_text(t) for t in self.instruction_inputs.split(256)]
            self._text_cache = F.normalize(torch.cat(chunks), dim=-1)
        return self._text_cache

    def train(self, mode: bool = True) -> ViCLIP:
        self._text_cache = None  # weights may change while training
        return super().train(mode)

    def temperature(self) -> Tensor | float:
        if self.cfg.temperature is not None:
            return self.cfg.temperature
        with torch.no_grad():
            self.temp.clamp_(min=0.01)
        return self.temp

    def forward(self, inputs: dict, task: bool) -> BranchOutput:
        """inputs: `video` uint8 (B, T, H, W, 3), `instruction` ids (B,), `task` ids (B,)."""
        pooled, projected = self.encode_video(inputs["video"])
        feature = projected if self.cfg.feature == Feature.projected else pooled
        if not task:
            return BranchOutput(feature)
        labels = inputs["instruction"]
        v = F.normalize(projected, dim=-1)
        t = F.normalize(self.encode_text(self.instruction_inputs[labels]), dim=-1)
        out = bidirectional_infonce(v, t, labels, self.temperature(), distributed=self.training)
        if self.training:
            return BranchOutput(feature, out.loss, {"hit_vt": out.hit_ue, "hit_tv": out.hit_eu})
        return BranchOutput(feature, out.loss, self.update_recognition(v, labels, inputs["task"]))

    def closest_instruction(self, video_embeddings: Tensor) -> Tensor:
        """Index of the most similar instruction of the data for each unit video embedding."""
        return (video_embeddings @ self.instruction_embeddings().T).argmax(dim=1)

    @torch.no_grad()
    def embed_videos(self, video: Tensor) -> Tensor:
        """Unit video embeddings of uint8 clips (B, T, H, W, 3), as evaluation computes them (no masking)."""
        return F.normalize(self.encode_video(video)[1], dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: list[str]) -> Tensor:
        """Unit text embeddings of any instructions."""
        return F.normalize(self.encode_text(self.text_inputs(texts).to(self.mean.device)), dim=-1)

    def clips(self, video) -> Tensor:
        """A user's clip (T, H, W, 3) or clips (B, T, H, W, 3) as a uint8 tensor on the model's device; one
        clear error for anything else (channels first, floats, another frame count)."""
        clips = torch.as_tensor(np.asarray(video) if not isinstance(video, Tensor) else video)
        shape = tuple(clips.shape)
        if clips.ndim not in (4, 5) or shape[-1] != 3:
            hint = ": move the channel axis last" if clips.ndim in (4, 5) and shape[-3] == 3 else ""
            raise MirrorError(f"a clip is uint8 RGB of shape (T, H, W, 3), several (B, T, H, W, 3); got {shape}{hint}")
        if clips.dtype != torch.uint8:
            scaled = clips.is_floating_point() and clips.numel() > 0 and float(clips.max()) <= 1.0
            hint = ": values in [0, 1], so multiply by 255 and convert to uint8" if scaled else ""
            raise MirrorError(f"a clip is uint8 RGB (0 to 255); got {clips.dtype}{hint}")
        if shape[-4] != self.cfg.frames:
            raise MirrorError(f"a clip has the model's {self.cfg.frames} frames (understanding.frames); got "
                              f"{shape[-4]}")
        return clips.to(self.mean.device)

    @torch.no_grad()
    def recognise(self, video, instructions: list[str], scores: bool = False):
        """The index of the instruction a uint8 clip (T, H, W, 3) shows among `instructions`, as an int; for
        several clips (B, T, H, W, 3) a list of ints. With `scores`, also the cosine similarities (clips x
        instructions). In evaluation mode (no patch masking)."""
        if isinstance(instructions, str) or not instructions:
            raise MirrorError("recognise: give a non-empty list of instructions to choose among")
        clips = self.clips(video)
        similarity = self.embed_videos(clips.view(-1, *clips.shape[-4:])) @ self.embed_texts(list(instructions)).T
        chosen = similarity.argmax(1).tolist()
        chosen = chosen[0] if clips.ndim == 4 else chosen
        return (chosen, similarity.cpu()) if scores else chosen

    def update_recognition(self, v: Tensor, labels: Tensor, tasks: Tensor) -> dict[str, MeanMetric]:
        """Top-1 recognition among all instructions, overall and per task (torchmetrics, synced in DDP)."""
        correct = (self.closest_instruction(v) == labels).float()
        self.recognition.update(correct)
        metrics = {"recognition": self.recognition}
        for i, (name, metric) in enumerate(zip(self.spec.tasks, self.recognition_by_task, strict=True)):
            metric.update(correct[tasks == i])
            metrics[f"recognition/{name}"] = metric
        return metrics
