"""Experiment loggers: W&B (offline unless an API key is configured, same run on resume) or CSV (one file
per run, continued on resume)."""

from __future__ import annotations

import csv
import netrc
import os
import secrets
import string
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from mirror.config import MirrorConfig
from mirror.config.schema import LoggerKind, WandbMode
from mirror.files import atomic_write


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


class _ContinuedWriter(ExperimentWriter):
    """Appends to the run's metrics.csv; rows from `resume_step` on, logged before the run was stopped and
    about to be logged again by the resumed run, are dropped first."""

    def __init__(self, log_dir: str, resume_step: int | None):
        self.resume_step = resume_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            self.metrics_keys = list(reader.fieldnames or [])
            rows = [r for r in reader if self.resume_step is None or int(r["step"]) < self.resume_step]
        with atomic_write(path, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class RunCSVLogger(CSVLogger):
    """`<run>/csv/metrics.csv` (and hparams.yaml), one file over all starts of a run, written as it is logged
    so that a killed run keeps every row up to its last checkpoint."""

    def __init__(self, run_dir: Path, resume_step: int | None):
        super().__init__(save_dir=run_dir, name="csv", version="", flush_logs_every_n_steps=1)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = _ContinuedWriter(self.log_dir, self.resume_step)
        return self._experiment


def build_logger(cfg: MirrorConfig, run_dir: Path, resume_step: int | None = None) -> Logger | bool:
    """The configured logger; `resume_step` is the step a resumed run continues from."""
    if cfg.logger == LoggerKind.none:
        return False
    if cfg.logger == LoggerKind.csv:
        return RunCSVLogger(run_dir, resume_step)
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
