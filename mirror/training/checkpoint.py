"""Loading a trained MirrorModule back from a checkpoint, safely (`weights_only`) and with its config."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from mirror.config import MirrorConfig, config_from_dict
from mirror.data.module import MirrorDataModule
from mirror.errors import MirrorError
from mirror.training.module import MirrorModule
from mirror.training.run import build_datamodule


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents, loaded with `weights_only=True` so that it cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise MirrorError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise MirrorError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0]})") from None


def load_module(
    path: str | Path, overrides: Sequence[str] = ()
) -> tuple[MirrorConfig, MirrorDataModule, MirrorModule]:
    """Config, data module and trained module of a checkpoint; overrides apply to the saved config."""
    ckpt = read_checkpoint(path)
    saved = ckpt.get("hyper_parameters", {}).get("config")
    if saved is None:
        raise MirrorError(f"{path}: no mirror config inside; was it written by `mirror train`?")
    cfg = config_from_dict(saved, overrides, source=f"{path} (saved config)")
    datamodule = build_datamodule(cfg)
    module = MirrorModule(cfg, datamodule.spec)
    result = module.load_state_dict(ckpt["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        kind = "missing" if result.missing_keys else "unexpected"
        raise MirrorError(f"{path}: weights do not fit the config ({kind} key '{bad}')")
    return cfg, datamodule, module


def load_branch(module: MirrorModule, kind: str, path: str | Path) -> None:
    """Load one branch (`understanding` or `execution`) from a `mirror train` checkpoint into `module`."""
    state = read_checkpoint(path).get("state_dict", {})
    prefix = f"{kind}."
    part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    branch = getattr(module, kind)
    if not part or branch is None:
        raise MirrorError(f"{path}: holds no '{kind}' weights")
    result = branch.load_state_dict(part, strict=False)
    bad = result.missing_keys or result.unexpected_keys
    if bad:
        kind_of = "missing" if result.missing_keys else "unexpected"
        raise MirrorError(f"{path}: '{kind}' weights do not fit the config ({kind_of} key '{bad[0]}')")
