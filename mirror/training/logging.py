"""Experiment loggers: W&B (offline unless an API key is configured, same run on resume) or CSV."""

from __future__ import annotations

import netrc
import os
import secrets
import string
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from mirror.config import MirrorConfig
from mirror.config.schema import LoggerKind, WandbMode


def wandb_key_configured() -> bool:
    """An API key in the environment or in the netrc file that `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id kept in the run directory, created on the first start (by rank 0 only)."""
    path = run_dir / "wandb_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    if rank_zero_only.rank == 0:
        path.write_text(run_id + "\n")
    return run_id


def build_logger(cfg: MirrorConfig, run_dir: Path) -> Logger | bool:
    if cfg.logger == LoggerKind.none:
        return False
    if cfg.logger == LoggerKind.csv:
        return CSVLogger(save_dir=run_dir, name="csv")  # a new version_N per start keeps earlier logs
    w = cfg.wandb
    offline = w.mode == WandbMode.offline or (w.mode == WandbMode.auto and not wandb_key_configured())
    return WandbLogger(
        project=w.project,
        entity=w.entity,
        name=cfg.run.name,
        id=wandb_run_id(run_dir),
        save_dir=str(run_dir),
        offline=offline,
        group=w.group,
        tags=list(w.tags),
        notes=w.notes,
        resume="allow",
    )
