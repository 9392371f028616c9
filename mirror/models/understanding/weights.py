"""Loading ViCLIP weights from local files: the official ViCLIP checkpoint or an open_clip CLIP checkpoint.

Official ViCLIP (`torch.load(path)["model"]`: `vision_encoder.*`, `text_encoder.*`, `temp`) must match
every key and shape; the temporal embedding is interpolated when the clip length differs. An open_clip
CLIP (`visual.*` and text keys) initialises both towers: the 2-D patch kernel is inflated to the video
one, the text positions are cut to 32, and the new temporal embedding and `temp` keep their init.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mirror.errors import MirrorError

log = logging.getLogger(__name__)

# Parameters a CLIP image-text model does not have; they keep their ViCLIP initialisation.
NEW_IN_VICLIP = {"vision_encoder.temporal_positional_embedding", "temp"}
UNUSED_FROM_CLIP = {"logit_scale"}


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (`weights_only`), unwrapped from `model` / `state_dict` keys."""
    path = Path(path)
    if not path.is_file():
        raise MirrorError(f"weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise MirrorError(f"{path}: cannot read weights ({str(err).splitlines()[0]})") from None
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise MirrorError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def interpolate_temporal(embedding: Tensor, frames: int) -> Tensor:
    """[1, T, W] temporal embedding resampled linearly to `frames` positions."""
    if embedding.shape[1] == frames:
        return embedding
    return F.interpolate(embedding.transpose(1, 2), size=frames, mode="linear", align_corners=False).transpose(1, 2)


def from_open_clip(state: dict[str, Tensor], context_length: int) -> dict[str, Tensor]:
    """Rename an open_clip CLIP state dict to ViCLIP's keys and shapes."""
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
    """Load official ViCLIP or open_clip CLIP weights into `model` (a ViCLIP); one-line error on mismatch."""
    state = read_state_dict(path)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("recognition")}
    if any(k.startswith("visual.") for k in state):
        state = from_open_clip(state, model.text_encoder.positional_embedding.shape[0])
        expected_missing = NEW_IN_VICLIP
        kind = "open_clip CLIP"
    elif any(k.startswith("vision_encoder.") for k in state):
        key = "vision_encoder.temporal_positional_embedding"
        if key in state:
            state[key] = interpolate_temporal(state[key], own[key].shape[1])
        expected_missing = set()
        kind = "ViCLIP"
    else:
        raise MirrorError(f"{path}: neither ViCLIP (vision_encoder.*) nor open_clip CLIP (visual.*) weights")
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
