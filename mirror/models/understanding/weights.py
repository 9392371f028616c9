"""Loading ViCLIP weights from local files: the official ViCLIP checkpoint or an open_clip / OpenAI CLIP.

Official ViCLIP (`torch.load(path)["model"]`: `vision_encoder.*`, `text_encoder.*`, `temp`) must match every
key and shape. A CLIP (open_clip state dict, or OpenAI's TorchScript file) initialises both towers: the 2-D
patch kernel is inflated to the video one, the text positions are cut to 32, and the new temporal embedding
and `temp` keep their init. As the official code adapts weights: the temporal embedding is truncated for
fewer frames (interpolated for more), and the spatial positional embedding is resized bicubically when the
model's image size differs. Only OpenAI's CLIP was trained with QuickGELU like ViCLIP's towers; other CLIP
weights (e.g. LAION's, trained with GELU) load with a warning. A `mirror` training checkpoint gives its U branch
(`understanding.*`), which must match as the official file does: U pre-trained by this framework on other tasks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.errors import MirrorError
from mirror.models.weights import is_torchscript, read_state_dict

log = logging.getLogger(__name__)

# Parameters a CLIP image-text model does not have; they keep their ViCLIP initialisation.
NEW_IN_VICLIP = {"vision_encoder.temporal_positional_embedding", "temp"}
UNUSED_FROM_CLIP = {"logit_scale", "input_resolution", "context_length", "vocab_size"}
SPATIAL = "vision_encoder.positional_embedding"
TEMPORAL = "vision_encoder.temporal_positional_embedding"
BRANCH = "understanding."  # U's prefix in a `mirror` checkpoint's state dict


def fit_temporal(embedding: Tensor, frames: int) -> Tensor:
    """[1, T, W] temporal embedding for `frames` positions: the first ones when fewer (as the official code
    keeps them), linearly resampled when more."""
    if embedding.shape[1] >= frames:
        return embedding[:, :frames]
    return F.interpolate(embedding.transpose(1, 2), size=frames, mode="linear", align_corners=False).transpose(1, 2)


def fit_spatial(embedding: Tensor, tokens: int) -> Tensor:
    """[1 + g^2, W] positional embedding (class position first) resized bicubically to `tokens` positions."""
    if embedding.shape[0] == tokens:
        return embedding
    old, new = round((embedding.shape[0] - 1) ** 0.5), round((tokens - 1) ** 0.5)
    grid = embedding[1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat([embedding[:1], grid.permute(0, 2, 3, 1).flatten(0, 2)])


def from_open_clip(state: dict[str, Tensor], context_length: int) -> dict[str, Tensor]:
    """Rename an open_clip / OpenAI CLIP state dict to ViCLIP's keys and shapes."""
    out = {}
    for key, value in state.items():
        if key in UNUSED_FROM_CLIP:
            continue
        if key.startswith("visual."):
            key = "vision_encoder." + key.removeprefix("visual.")
            if key == "vision_encoder.conv1.weight":
                value = value.unsqueeze(2)  # [W, 3, p, p] -> [W, 3, 1, p, p]
        else:
            key = "text_encoder." + key
            if key == "text_encoder.positional_embedding":
                value = value[:context_length]
        out[key] = value
    return out


def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """Load official ViCLIP or CLIP weights, or the U branch of a `mirror` checkpoint (e.g. U pre-trained on other
    tasks), into `model` (a ViCLIP; with MiniLM as its text side, a CLIP text tower is not read); one-line error
    on mismatch."""
    state = read_state_dict(path)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("recognition")}
    clip_text = "text_encoder.positional_embedding" in own  # else MiniLM's projection is the text side
    context = own["text_encoder.positional_embedding"].shape[0] if clip_text else 0
    if any(k.startswith("visual.") for k in state):
        state = from_open_clip(state, context)
        expected_missing = NEW_IN_VICLIP
        kind = "CLIP"
        if not is_torchscript(path):
            log.warning("%s: CLIP weights load into ViCLIP's QuickGELU towers; unless they are OpenAI's, they were "
                        "trained with GELU and their features will be off", path)
    elif any(k.startswith(f"{BRANCH}vision_encoder.") for k in state):  # a `mirror` checkpoint: its U branch
        state = {k.removeprefix(BRANCH): v for k, v in state.items()
                 if k.startswith(BRANCH) and not k.startswith(f"{BRANCH}recognition")}
        expected_missing = set()
        kind = "mirror (U branch)"
    elif any(k.startswith("vision_encoder.") for k in state):
        expected_missing = set()
        kind = "ViCLIP"
    else:
        raise MirrorError(f"{path}: neither ViCLIP (vision_encoder.*) nor CLIP (visual.*) weights")
    own_text = {k for k in own if k.startswith("text_encoder.")}
    if not clip_text and {k for k in state if k.startswith("text_encoder.")} != own_text:
        # a CLIP text tower in the file, MiniLM's projection in the model: the projection keeps its initialisation
        state = {k: v for k, v in state.items() if not k.startswith("text_encoder.")}
        expected_missing = expected_missing | own_text
    if TEMPORAL in state:
        state[TEMPORAL] = fit_temporal(state[TEMPORAL], own[TEMPORAL].shape[1])
    if SPATIAL in state:
        state[SPATIAL] = fit_spatial(state[SPATIAL], own[SPATIAL].shape[0])
    missing = sorted(set(own) - set(state) - expected_missing)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise MirrorError(
            f"{path}: {kind} weights do not fit ViCLIP-{model.cfg.size}: "
            + (f"{len(missing)} missing keys, first '{missing[0]}'" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"{len(unexpected)} unexpected keys, first '{unexpected[0]}'" if unexpected else "")
        )
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise MirrorError(
                f"{path}: shape of '{key}' is {list(value.shape)}, ViCLIP-{model.cfg.size} needs {list(own[key].shape)}"
            )
    model.load_state_dict(state, strict=False)
    kept = sorted(set(own) - set(state))
    log.info("loaded %s weights from %s (%d tensors; kept initialisation: %s)", kind, path, len(state),
             ", ".join(kept) or "none")
