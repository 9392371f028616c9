"""The files and folders a run will read, declared on the config fields that name them, so that `mirror config`
can check them all before a long job starts rather than an hour into it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def reads(default: str | None = None) -> Any:
    """A config field naming a file or folder the run reads (checked by `mirror config`)."""
    return dataclasses.field(default=default, metadata={"reads": True})


def makes(default: str) -> Any:
    """A config field naming a folder the run reads and makes when it is absent (demonstrations, a cache)."""
    return dataclasses.field(default=default, metadata={"reads": True, "made": True})


def made(cfg: Any, key: str) -> bool:
    """Whether the field at dotted `key` is one the run makes when absent."""
    *parents, name = key.split(".")
    for part in parents:
        cfg = getattr(cfg, part)
    return bool(next(f for f in dataclasses.fields(cfg) if f.name == name).metadata.get("made"))


def input_paths(node: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(key, path) of every set `reads` field in a config tree, and `resume` when it names a checkpoint."""
    out = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out += input_paths(value, f"{key}.")
        elif value and (f.metadata.get("reads") or (key == "resume" and value != "auto")):
            out.append((key, str(value)))
    return out


def missing_inputs(cfg: Any) -> list[tuple[str, str]]:
    """The inputs that are neither there nor made by the run."""
    return [(key, path) for key, path in input_paths(cfg) if not Path(path).exists() and not made(cfg, key)]
