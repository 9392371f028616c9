"""`mirror config CONFIG [KEY=VALUE ...]`: what a run would be, before it starts: the merged config as YAML, each
branch's size, and every file or folder it will read (one line naming the missing ones, exit 2)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

from mirror.config import load_config, to_dict
from mirror.config.inputs import input_paths, made, missing_inputs
from mirror.config.loader import NO_MODEL
from mirror.errors import ConfigError


def without_inputs(section):
    """A model section with its weight files unset: sizes are counted without reading them."""
    names = [f.name for f in dataclasses.fields(section) if f.metadata.get("reads")]
    return dataclasses.replace(section, **dict.fromkeys(names))


def branch_sizes(cfg) -> list[tuple[str, str, float, float]]:
    """(branch, model, parameters, trainable parameters), in millions, of each branch the config builds."""
    from mirror.models.protocol import DataSpec
    from mirror.registry import build_branch

    tasks = list(getattr(cfg.data, "tasks", None) or getattr(cfg.data, "levels", None) or ["task"])
    spec = DataSpec(instructions=[f"an instruction of {t}" for t in tasks], tasks=tasks)
    rows = []
    quiet = logging.getLogger("mirror.models.execution.language")  # its warning is about the unset file
    for kind in ("understanding", "execution"):
        section = getattr(cfg, kind)
        if section.name == NO_MODEL:
            continue
        quiet.disabled = True
        try:
            model = build_branch(kind, without_inputs(section), spec)
        finally:
            quiet.disabled = False
        params = list(model.parameters())
        rows.append((kind, section.name, sum(p.numel() for p in params) / 1e6,
                     sum(p.numel() for p in params if p.requires_grad) / 1e6))
    return rows


def describe(config: str | Path, overrides: Sequence[str] = ()) -> str:
    cfg = load_config(config, overrides)
    lines = [yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip(), "", "branches (parameters, millions):"]
    lines += [f"  {kind:<14} {name:<14} {total:9.3f}  trainable {trainable:.3f}"
              for kind, name, total, trainable in branch_sizes(cfg)]
    lines += ["(sizes that depend on the data's instructions, such as a vocabulary, are counted for one per task)",
              "", "files the run reads:"]
    lines += [f"  {key} = {path}" + (" (made when absent)" if made(cfg, key) and not Path(path).exists() else "")
              for key, path in input_paths(cfg)] or ["  none"]
    missing = missing_inputs(cfg)
    if missing:
        print("\n".join(lines))
        raise ConfigError("missing: " + ", ".join(f"{key} = {path}" for key, path in missing))
    return "\n".join([*lines, "  all present"])
