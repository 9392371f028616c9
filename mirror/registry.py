"""Where a name in a config (`understanding.name: viclip`) finds its class.

Built-in names map to import paths so that nothing heavy is imported until a run picks it; any
`package.module:Class` path works too, which is how users plug in their own models and data.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

from mirror.errors import ConfigError

if TYPE_CHECKING:
    from mirror.models.protocol import Branch, DataSpec

BUILTIN: dict[str, dict[str, str]] = {
    "understanding": {"viclip": "mirror.models.understanding.viclip:ViCLIP"},
    "execution": {
        "babyai_agent": "mirror.models.execution.babyai_agent:BabyAIAgent",
        "arp": "mirror.models.execution.arp:ARP",
    },
    "data": {
        "babyai": "mirror.data.babyai.datamodule:BabyAIData",
        "rlbench": "mirror.data.rlbench.datamodule:RLBenchData",
        "metaworld": "mirror.data.metaworld.datamodule:MetaWorldData",
    },
}


def resolve(kind: str, name: str) -> type:
    """Return the class registered as `name` for `kind`, or imported from a `module:Class` path."""
    path = BUILTIN[kind].get(name, name)
    if ":" not in path:
        choices = sorted(BUILTIN[kind])
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        known = ", ".join(choices) or "none built in"
        raise ConfigError(
            f"unknown {kind} '{name}'{hint}; built-in: {known}; or give a 'package.module:Class' path"
        )
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
