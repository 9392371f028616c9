"""Builds a run's config: schema defaults <- experiment file (and its `base:` files) <- command-line dotlist.

Every failure is a `ConfigError` with one line that names the file or the key (and the closest valid key).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from mirror import registry
from mirror.config.schema import (
    DataConfig,
    ExecutionConfig,
    MirrorConfig,
    UnderstandingConfig,
)
from mirror.errors import ConfigError
from mirror.files import atomic_write

SECTIONS = {"understanding": UnderstandingConfig, "execution": ExecutionConfig, "data": DataConfig}
NO_MODEL = "none"  # `understanding.name: none` (or execution): that branch is absent, e.g. to train one alone
Layer = tuple[str, DictConfig]


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> MirrorConfig:
    """Load an experiment file, apply `key=value` overrides and validate the result."""
    path = Path(path)
    layers = read_experiment(path) + [("command line", parse_overrides(overrides))]
    return build_config(layers, default_name=f"{path.parent.name}-{path.stem}")


def config_from_dict(saved: dict[str, Any], overrides: Sequence[str] = (), source: str = "saved config"):
    """Rebuild a config saved with a run or a checkpoint, with optional overrides."""
    layers = [(source, OmegaConf.create(saved)), ("command line", parse_overrides(overrides))]
    return build_config(layers, default_name="run")


def to_dict(cfg: MirrorConfig) -> dict[str, Any]:
    """Plain containers only (enums as strings): for YAML, W&B and `weights_only` checkpoints."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)


def save_config(cfg: MirrorConfig, path: Path) -> None:
    """Write the merged config as YAML, atomically so that concurrent readers never see half a file."""
    with atomic_write(path) as f:
        f.write(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_experiment(path: Path, seen: tuple[Path, ...] = ()) -> list[Layer]:
    """The layers of an experiment file: its `base:` files first (recursively), then itself."""
    path = path.resolve() if path.exists() else path
    if path in seen:
        raise ConfigError(f"{path}: `base:` files include each other in a loop")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    bases = data.pop("base", None) or []
    layers: list[Layer] = []
    for base in [bases] if isinstance(bases, str) else bases:
        layers += read_experiment(path.parent / base, seen + (path,))
    return layers + [(str(path), OmegaConf.create(data))]


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"command line: '{item}' is not KEY=VALUE")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as err:
        raise ConfigError(f"command line: {err}".splitlines()[0]) from None


def _drop_replaced_models(layers: Sequence[Layer]) -> list[Layer]:
    """A layer that switches a section to another model (`name`) voids that section in earlier layers: their
    keys belonged to the previous model (e.g. arp.yaml sets `understanding.name: none` over mirror.yaml)."""
    layers = [(source, layer.copy()) for source, layer in layers]
    for section in SECTIONS:
        names = [layer.get(section, {}).get("name") if isinstance(layer.get(section), DictConfig) else None
                 for _, layer in layers]
        final = next((n for n in reversed(names) if n is not None), None)
        current = None
        effective = []
        for n in names:
            current = n if n is not None else current
            effective.append(current)
        for (_, layer), name in zip(layers, effective, strict=True):
            if name is not None and name != final and section in layer:
                del layer[section]
    return layers


def build_config(layers: Sequence[Layer], default_name: str) -> MirrorConfig:
    """Merge the layers onto the schema chosen by the sections' `name` keys and validate."""
    layers = _drop_replaced_models(layers)
    schema = OmegaConf.structured(_schema(layers))
    if OmegaConf.is_missing(schema.run, "name"):
        schema.run.name = default_name
    merged = schema
    for source, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as err:
            raise ConfigError(f"{source}: {_describe(err, schema)}") from None
    missing = sorted(OmegaConf.missing_keys(merged))
    if missing:
        raise ConfigError(f"missing value for '{missing[0]}'")
    try:
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, schema)) from None
    check(cfg)
    return cfg


def _schema(layers: Sequence[Layer]) -> MirrorConfig:
    """The default config whose open sections use the config classes of the chosen names."""
    sections = {}
    for section, base in SECTIONS.items():
        name = None
        for _, layer in layers:
            node = layer.get(section)
            if isinstance(node, DictConfig) and node.get("name") is not None:
                name = node.get("name")
        if name is None:
            raise ConfigError(f"missing value for '{section}.name'")
        if not isinstance(name, str):
            raise ConfigError(f"{section}.name must be a string, got {name!r}")
        if name == NO_MODEL and section != "data":
            sections[section] = base(name=name)
            continue
        cfg_cls = registry.config_class(section, name)
        if not (isinstance(cfg_cls, type) and issubclass(cfg_cls, base)):
            raise ConfigError(f"{section}.name '{name}': its config_class must subclass {base.__name__}")
        sections[section] = cfg_cls(name=name)
    return MirrorConfig(**sections)


def _describe(err: OmegaConfBaseException, schema: DictConfig) -> str:
    key = getattr(err, "full_key", "") or ""
    msg = str(getattr(err, "msg", err)).splitlines()[0]
    if isinstance(err, ConfigKeyError) and key:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(schema, parent) if parent else schema
        valid = list(node.keys()) if isinstance(node, DictConfig) else []
        close = difflib.get_close_matches(leaf, valid, n=1)
        hint = f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}"
    if "is not a ListConfig" in msg:  # OmegaConf's words for a single value given to a list
        msg = f"a list is expected, written in brackets: {key}=[a,b]"
    return f"bad value for '{key}': {msg}" if key else msg


def check(cfg: MirrorConfig) -> None:
    """Value checks the types cannot express."""
    rules = [
        ("align.tau", cfg.align.tau > 0, "must be > 0"),
        ("align.dim", cfg.align.dim > 0, "must be > 0"),
        ("align.weight", cfg.align.weight >= 0, "must be >= 0"),
        ("align.warmup_steps", cfg.align.warmup_steps >= 0, "must be >= 0"),
        ("understanding.weight", cfg.understanding.weight >= 0, "must be >= 0"),
        ("execution.weight", cfg.execution.weight >= 0, "must be >= 0"),
        ("understanding.fraction", 0 < cfg.understanding.fraction <= 1, "must be in (0, 1]"),
        ("data.batch_size", cfg.data.batch_size > 0, "must be > 0"),
        ("trainer.max_steps", cfg.trainer.max_steps > 0, "must be > 0"),
        ("trainer.devices", cfg.trainer.devices == -1 or cfg.trainer.devices > 0, "must be > 0, or -1 for all"),
        ("trainer.num_nodes", cfg.trainer.num_nodes > 0, "must be > 0"),
        ("trainer.threads", cfg.trainer.threads is None or cfg.trainer.threads > 0, "must be > 0 (or null)"),
        ("trainer.ckpt_every", cfg.trainer.ckpt_every > 0, "must be > 0"),
        ("trainer.val_every", cfg.trainer.val_every >= 0, "must be >= 0 (0 disables validation)"),
        ("trainer.accumulate_grad_batches", cfg.trainer.accumulate_grad_batches > 0, "must be > 0"),
        *((f"{part}.optimizer.betas", len(getattr(cfg, part).optimizer.betas) == 2, "must be two numbers")
          for part in ("understanding", "execution", "align")),
        ("optim.min_lr_ratio", 0 <= cfg.optim.min_lr_ratio <= 1, "must be in [0, 1]"),
    ]
    for key, ok, why in rules:
        if not ok:
            raise ConfigError(f"bad value for '{key}': {why}")
    for section in ("understanding", "execution"):
        branch = getattr(cfg, section)
        if branch.name == NO_MODEL and (branch.weight > 0 or cfg.align.weight > 0):
            raise ConfigError(f"{section}.name is none: set {section}.weight=0 and align.weight=0")
