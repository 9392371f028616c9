"""Run configuration: the typed schema and the loader that merges defaults, experiment file and overrides."""

from mirror.config.loader import config_from_dict, load_config, save_config, to_dict
from mirror.config.schema import (
    AlignConfig,
    BranchConfig,
    DataConfig,
    ExecutionConfig,
    MirrorConfig,
    OptimizerConfig,
    OptimizerKind,
    Positives,
    UnderstandingConfig,
)

__all__ = [
    "AlignConfig",
    "BranchConfig",
    "DataConfig",
    "ExecutionConfig",
    "MirrorConfig",
    "OptimizerConfig",
    "OptimizerKind",
    "Positives",
    "UnderstandingConfig",
    "config_from_dict",
    "load_config",
    "save_config",
    "to_dict",
]
