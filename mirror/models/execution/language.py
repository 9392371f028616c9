"""Per-token instruction features from CLIP's RN50 text tower (as ARP and RVT use), frozen and cached.

The tower is built with open_clip (context 77, width 512, 12 layers, QuickGELU) and loaded from a local
file when one is configured (an open_clip / OpenAI RN50 state dict; only its text keys are read). Without
a file it keeps a fixed-seed initialisation, so features are reproducible but carry no pretrained meaning.
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
from mirror.models.understanding.weights import read_state_dict

log = logging.getLogger(__name__)
CONTEXT, WIDTH = 77, 512


def rn50_text_tower(checkpoint: str | Path | None) -> TextTransformer:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        tower = TextTransformer(context_length=CONTEXT, width=WIDTH, heads=8, layers=12, output_dim=1024,
                                act_layer=QuickGELU, output_tokens=True)
    if checkpoint:
        state = read_state_dict(checkpoint)
        text = {k: v for k, v in state.items() if not k.startswith("visual.") and k != "logit_scale"}
        result = tower.load_state_dict(text, strict=False)
        if result.missing_keys or result.unexpected_keys:
            bad = (result.missing_keys or result.unexpected_keys)[0]
            raise MirrorError(f"{checkpoint}: not a CLIP RN50 text tower (first mismatched key '{bad}')")
    else:
        log.warning("execution.clip_checkpoint is not set: language features come from an untrained CLIP tower")
    return tower.eval().requires_grad_(False)


@torch.no_grad()
def token_features(tower: TextTransformer, texts: Sequence[str], batch: int = 64) -> Tensor:
    """(N, 77, 512) features after `ln_final` for each text."""
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=CONTEXT)
    out = [tower(tokenizer(list(texts[i : i + batch])))[1] for i in range(0, len(texts), batch)]
    return torch.cat(out).float()
