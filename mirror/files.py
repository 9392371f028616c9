"""Files written whole or not at all: a temporary file beside the target, synced, then renamed into place."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_args) -> Iterator[IO]:
    """Open `path` for writing so that readers, and a kill mid-write, never see half a file under its name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, mode, **open_args) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
