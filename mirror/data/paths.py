"""Folders that data is written into, created up front with a one-line error naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

from mirror.errors import ConfigError


def writable_folder(path: str | Path, setting: str) -> Path:
    """`path` created if missing; a file in the way, or no permission, fails naming `setting` (e.g. data.root)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{setting}: cannot create folder {path} ({err.strerror or err})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{setting}: folder {path} is not writable")
    return path
