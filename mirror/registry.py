"""Where a name in a config (`understanding.name: viclip`) finds its class, and `mirror demos NAME` its program.

Built-in names map to import paths so that nothing heavy is imported until a run picks it; any
`package.module:Class` path works too, which is how users plug in their own models and data. A benchmark
is one folder under `mirror/benchmarks/` and one line of `BENCHMARKS` (see docs/development.md).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from mirror.errors import ConfigError

if TYPE_CHECKING:
    from mirror.models.protocol import Branch, DataSpec



class Benchmark(NamedTuple):
    data: str  # its data module, `module:Class` (`data.name` in a config)
    demos: str  # `main(argv)` of `mirror demos NAME`: generates or preprocesses its demonstrations


BENCHMARKS: dict[str, Benchmark] = {
    "babyai": Benchmark("mirror.benchmarks.babyai.datamodule:BabyAIData", "mirror.benchmarks.babyai.demos:main"),
    "rlbench": Benchmark("mirror.benchmarks.rlbench.datamodule:RLBenchData",
                         "mirror.benchmarks.rlbench.preprocess:main"),
    "metaworld": Benchmark("mirror.benchmarks.metaworld.datamodule:MetaWorldData",
                           "mirror.benchmarks.metaworld.demos:main"),
}

BUILTIN: dict[str, dict[str, str]] = {
    "understanding": {"viclip": "mirror.models.understanding.viclip:ViCLIP"},
    "execution": {
        "babyai_agent": "mirror.models.execution.babyai_agent:BabyAIAgent",
        "arp": "mirror.models.execution.arp:ARP",
    },
    "data": {name: bench.data for name, bench in BENCHMARKS.items()},
}


def _unknown(what: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{hint}; built-in: {', '.join(sorted(choices)) or 'none'}"


def resolve(kind: str, name: str) -> type:
    """Return the class registered as `name` for `kind`, or imported from a `module:Class` path."""
    path = BUILTIN[kind].get(name, name)
    if ":" not in path:
        raise ConfigError(f"{_unknown(kind, name, list(BUILTIN[kind]))}; or give a 'package.module:Class' path")
    module_name, _, attr = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ConfigError(f"{kind}.name '{name}': cannot import module '{module_name}' ({err})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{kind}.name '{name}': module '{module_name}' has no '{attr}'") from None


def config_class(kind: str, name: str) -> type:
    """The config dataclass of the class behind `name` (its `config_class` attribute)."""
    cls = resolve(kind, name)
    cfg_cls = getattr(cls, "config_class", None)
    if cfg_cls is None:
        raise ConfigError(f"{kind}.name '{name}': {cls.__qualname__} has no `config_class` attribute")
    return cfg_cls


def build_branch(kind: str, cfg: Any, spec: DataSpec) -> Branch:
    """Instantiate the registered model of a config section and check it offers an alignment feature."""
    model = resolve(kind, cfg.name)(cfg, spec)
    if not isinstance(getattr(model, "feature_dim", None), int):
        raise ConfigError(f"{kind}.name '{cfg.name}': the model has no integer `feature_dim`")
    return model


def run_demos(name: str, argv: Sequence[str]) -> None:
    """Run the demonstrations program of the named benchmark (imported only when chosen)."""
    if name not in BENCHMARKS:
        raise ConfigError(_unknown("demonstration source", name, list(BENCHMARKS)))
    module, _, func = BENCHMARKS[name].demos.partition(":")
    getattr(importlib.import_module(module), func)(list(argv))
