"""`mirror demos SOURCE ...`: the demonstration generators and preprocessors, by source name."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence

from mirror.errors import ConfigError

SOURCES: dict[str, str] = {
    "babyai": "mirror.data.babyai.demos:main",
    "rlbench": "mirror.data.rlbench.preprocess:main",
    "metaworld": "mirror.data.metaworld.demos:main",
}


def run_source(name: str, argv: Sequence[str]) -> None:
    """Run the `main(argv)` of the named source (imported only when chosen)."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, SOURCES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown demonstration source '{name}'{hint}; known: {', '.join(SOURCES) or 'none'}")
    module, _, func = SOURCES[name].partition(":")
    getattr(importlib.import_module(module), func)(list(argv))
