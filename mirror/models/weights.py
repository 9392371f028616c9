"""Reading weight files as users have them, without running code from them.

A file is read with `torch.load(weights_only=True)`. OpenAI's CLIP files (`RN50.pt`, `ViT-B-16.pt`) are
TorchScript archives and are read with `torch.jit.load`. Training checkpoints that also pickle other objects
(an LR scheduler, a config) are read with a harmless stand-in for every class they name, so only
their tensors come back. The state dict is unwrapped from `model`, `model_state` or `state_dict` keys and a
DDP `module.` prefix is dropped.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections import OrderedDict, defaultdict
from pathlib import Path

import torch
from torch import Tensor

from mirror.errors import MirrorError

WRAPPERS = ("model", "model_state", "state_dict")
CONTAINERS = {"builtins.dict": dict, "builtins.list": list, "builtins.tuple": tuple, "builtins.set": set,
              "collections.OrderedDict": OrderedDict, "collections.defaultdict": defaultdict}


class StandIn:
    """Stands in for any class a checkpoint names besides tensors and containers; keeps nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


def is_torchscript(path: str | Path) -> bool:
    """True for a TorchScript archive (a zip holding compiled code), such as OpenAI's CLIP files."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def _load(path: Path) -> object:
    if is_torchscript(path):
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format OpenAI ships
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        stand_ins = [(CONTAINERS.get(name, StandIn), name) for name in names]
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a weights file; one-line `MirrorError` if it is missing or holds no state dict."""
    path = Path(path)
    if not path.is_file():
        raise MirrorError(f"weights file not found: {path}")
    try:
        data = _load(path)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as err:
        raise MirrorError(f"{path}: cannot read weights ({str(err).strip().splitlines()[0]})") from None
    for key in WRAPPERS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not data or not all(isinstance(v, Tensor) for v in data.values()):
        raise MirrorError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}
