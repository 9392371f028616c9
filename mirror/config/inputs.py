"""The files and folders a run will read, declared on the config fields that name them, so that `mirror config`
can check them all before a long job starts rather than an hour into it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def reads(default: str | None = None) -> Any:
    """A config field naming a file or folder the run reads (checked by `mirror config`)."""
    return dataclasses.field(default=default, metadata={"reads": True})


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
    return [(key, path) for key, path in input_paths(cfg) if not Path(path).exists()]
