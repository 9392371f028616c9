"""Checkpoint files: written atomically, read safely (`weights_only`), checked against the model a config
builds, and loaded back into a MirrorModule with their config."""

from __future__ import annotations

import pickle
import re
import shutil
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from mirror.config import MirrorConfig, config_from_dict
from mirror.data.module import MirrorDataModule, build_datamodule
from mirror.errors import ConfigError, MirrorError
from mirror.files import atomic_write
from mirror.models.protocol import DataSpec
from mirror.training.module import MirrorModule


def unreadable(path: Path, err: Exception) -> str:
    """Why a file is no checkpoint, in our words (torch's message may advise an unsafe load)."""
    if path.stat().st_size == 0:
        return "an empty file"
    if zipfile.is_zipfile(path):
        if isinstance(err, pickle.UnpicklingError):
            return "holds objects that a safe load refuses to build (not written by `mirror train`)"
        return "a damaged checkpoint archive"
    with open(path, "rb") as f:
        head = f.read(1024)
    if head.startswith(b"PK"):
        return "a truncated checkpoint (its archive is cut short)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not a PyTorch checkpoint"
    return "a text file, not a checkpoint"


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents, loaded with `weights_only=True` so that it cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise MirrorError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. the unpickler's remark on a foreign pickle protocol
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any parse failure of an untrusted file: torch raises many kinds
        raise MirrorError(f"{path}: {unreadable(path, err)}; a checkpoint is a .ckpt file that `mirror train` "
                          "writes under <run>/checkpoints/") from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise MirrorError(f"{path}: not a checkpoint written by `mirror train` (no state_dict)")
    return data


def checkpoint_step(path: str | Path) -> int:
    """The training step a checkpoint holds: from a `step<N>.ckpt` name, else read from the file (its tensors
    memory-mapped, not loaded); -1 for a file that cannot be read. Never the file's time: a copied run keeps
    its order."""
    path = Path(path)
    match = re.fullmatch(r"step(\d+)\.ckpt", path.name)
    if match:
        return int(match.group(1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
    except Exception:  # unreadable or foreign: resume=auto reports it when it gets there
        return -1


def check_fits(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str = "weights") -> None:
    """One line naming the first key that the model lacks, does not have, or holds in another shape."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        kind, key = ("missing", missing[0]) if missing else ("unexpected", unexpected[0])
        raise ConfigError(f"{path}: {what} do not fit the config ({kind} key '{key}')")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ConfigError(f"{path}: {what} do not fit the config: '{key}' is {list(value.shape)} in the "
                              f"checkpoint, {list(own[key].shape)} in the model")


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy through a temporary file renamed into place: readers never see half a file under `dst`."""
    with open(src, "rb") as source, atomic_write(dst, "wb") as f:
        shutil.copyfileobj(source, f)


class RunCheckpointIO(TorchCheckpointIO):
    """Checkpoints go to a temporary file that is renamed into place, so a kill mid-write never leaves a
    half file under a checkpoint's name; a checkpoint already read (and checked) to resume is not read twice."""

    def __init__(self) -> None:
        self.preloaded: dict[str, dict[str, Any]] = {}

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path: str | Path, **kwargs: Any) -> dict[str, Any]:
        preloaded = self.preloaded.pop(str(path), None)
        return preloaded if preloaded is not None else super().load_checkpoint(path, **kwargs)


def saved_config(ckpt: dict, path: str | Path, overrides: Sequence[str] = ()) -> MirrorConfig:
    """The config a checkpoint was trained with, with optional overrides."""
    saved = ckpt.get("hyper_parameters", {}).get("config")
    if saved is None:
        raise MirrorError(f"{path}: no mirror config inside; was it written by `mirror train`?")
    return config_from_dict(saved, overrides, source=f"{path} (saved config)")


def restore_module(ckpt: dict, path: str | Path, cfg: MirrorConfig | None = None,
                   spec: DataSpec | None = None) -> MirrorModule:
    """The trained module of a checkpoint, built from its saved config and data spec (or the given ones)."""
    cfg = cfg or saved_config(ckpt, path)
    spec = spec or DataSpec(**ckpt["hyper_parameters"]["spec"])
    module = MirrorModule(cfg, spec)
    check_fits(module, ckpt["state_dict"], path)
    module.load_state_dict(ckpt["state_dict"])
    return module


def load_module(
    path: str | Path, overrides: Sequence[str] = ()
) -> tuple[MirrorConfig, MirrorDataModule, MirrorModule]:
    """Config, data module and trained module of a checkpoint; overrides apply to the saved config."""
    ckpt = read_checkpoint(path)
    cfg = saved_config(ckpt, path, overrides)
    datamodule = build_datamodule(cfg)
    return cfg, datamodule, restore_module(ckpt, path, cfg, datamodule.spec)


def load_branch(module: MirrorModule, kind: str, path: str | Path) -> None:
    """Load one branch (`understanding` or `execution`) from a `mirror train` checkpoint into `module`."""
    state = read_checkpoint(path)["state_dict"]
    prefix = f"{kind}."
    part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    branch = getattr(module, kind)
    if not part or branch is None:
        raise MirrorError(f"{path}: holds no '{kind}' weights")
    check_fits(branch, part, path, f"'{kind}' weights")
    branch.load_state_dict(part)
