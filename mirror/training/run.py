"""`mirror train`: the run directory, resume, and the joint training run itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from mirror import registry
from mirror.config import MirrorConfig, save_config, to_dict
from mirror.data.module import MirrorDataModule
from mirror.errors import ConfigError
from mirror.training.logging import build_logger
from mirror.training.module import MirrorModule, NonFiniteLossError
from mirror.training.trainer import build_trainer


def run_dir(cfg: MirrorConfig) -> Path:
    return Path(cfg.run.root) / cfg.run.name


def newest_checkpoint(directory: Path) -> Path | None:
    """The most recently written checkpoint of a run (periodic, last, or SLURM's pre-requeue save)."""
    found = [p for p in (directory / "checkpoints").glob("*.ckpt")] + list(directory.glob("hpc_ckpt_*.ckpt"))
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def resume_checkpoint(cfg: MirrorConfig, directory: Path) -> Path | None:
    """The checkpoint to continue from, per `resume`; refuses to overwrite a run that was not asked to resume."""
    if cfg.resume == "auto":
        return newest_checkpoint(directory)
    if cfg.resume:
        path = Path(cfg.resume)
        if not path.is_file():
            raise ConfigError(f"resume: checkpoint not found: {path}")
        return path
    if newest_checkpoint(directory) is not None:
        raise ConfigError(
            f"run directory {directory} already holds checkpoints; add resume=auto to continue it "
            "or set run.name=... to start another run"
        )
    return None


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@rank_zero_only
def write_config(cfg: MirrorConfig, directory: Path) -> None:
    """Save the merged config with the run; on resume, say which keys changed since the last start."""
    path = directory / "config.yaml"
    if path.is_file():
        before, now = _flat(yaml.safe_load(path.read_text()) or {}), _flat(to_dict(cfg))
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k) and k != "resume")
        if changed:
            rank_zero_warn(f"config changed since the last start of this run: {', '.join(changed)}")
    save_config(cfg, path)


def build_datamodule(cfg: MirrorConfig) -> MirrorDataModule:
    return registry.resolve("data", cfg.data.name)(cfg)


def train(cfg: MirrorConfig, callbacks: Sequence[Callback] = ()) -> Path:
    """Train U and E jointly as configured; returns the run directory with config, checkpoints and logs."""
    directory = run_dir(cfg)
    ckpt = resume_checkpoint(cfg, directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_config(cfg, directory)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = MirrorModule(cfg, datamodule.spec)
    logger = build_logger(cfg, directory)
    if logger:
        logger.log_hyperparams(to_dict(cfg))
    trainer = build_trainer(cfg, directory, logger, [*datamodule.callbacks(), *callbacks])
    rank_zero_info(f"run directory: {directory}" + (f"; resuming from {ckpt}" if ckpt else ""))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
    except NonFiniteLossError as err:
        periodic = sorted((directory / "checkpoints").glob("step*.ckpt"))
        kept = periodic[-1] if periodic else "none written yet"
        raise NonFiniteLossError(f"{err}; last good checkpoint: {kept}") from None
    return directory
