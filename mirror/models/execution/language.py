"""Per-token instruction features from CLIP's RN50 text tower (as ARP and RVT use), frozen and cached.

The tower is built with open_clip (context 77, width 512, 12 layers, QuickGELU) and loaded from a local
file when one is configured: OpenAI's `RN50.pt` (a TorchScript archive), a state dict exported from it, or an
open_clip RN50 state dict; only the text keys are read, and they must fit exactly. Without a file it keeps a
fixed-seed initialisation, so features are reproducible but carry no pretrained meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
from open_clip.transformer import QuickGELU, TextTransformer
from torch import Tensor

from mirror.errors import MirrorError
from mirror.models.weights import read_state_dict

log = logging.getLogger(__name__)
CONTEXT, WIDTH = 77, 512
NOT_TEXT = {"logit_scale", "input_resolution", "context_length", "vocab_size"}  # OpenAI's files hold the last three


def rn50_text_tower(checkpoint: str | Path | None) -> TextTransformer:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        tower = TextTransformer(context_length=CONTEXT, width=WIDTH, heads=8, layers=12, output_dim=1024,
                                act_layer=QuickGELU, output_tokens=True)
    if checkpoint:
        load_text_tower(tower, checkpoint)
    else:
        log.warning("execution.clip_checkpoint is not set: language features come from an untrained CLIP tower")
    return tower.eval().requires_grad_(False)


def load_text_tower(tower: TextTransformer, path: str | Path) -> None:
    """Load the text keys of a CLIP file into `tower`, strictly; one-line error naming the first bad key."""
    state = read_state_dict(path)
    text = {k: v for k, v in state.items() if not k.startswith("visual.") and k not in NOT_TEXT}
    own = tower.state_dict()
    bad = sorted(set(own) ^ set(text)) or [k for k in own if own[k].shape != text[k].shape]
    if bad:
        raise MirrorError(f"{path}: not the CLIP text tower this model needs (first mismatched key '{bad[0]}')")
    tower.load_state_dict(text)


@torch.no_grad()
def token_features(tower: TextTransformer, texts: Sequence[str], batch: int = 64) -> Tensor:
    """(N, 77, 512) features after `ln_final` for each text."""
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=CONTEXT)
    out = [tower(tokenizer(list(texts[i : i + batch])))[1] for i in range(0, len(texts), batch)]
    return torch.cat(out).float()
