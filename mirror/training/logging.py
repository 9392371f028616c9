"""Experiment loggers: W&B (offline unless an API key is configured, same run on resume) or CSV (one file
per run, continued on resume)."""

from __future__ import annotations

import configparser
import csv
import netrc
import os
import secrets
import string
from pathlib import Path
from urllib.parse import urlsplit

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only

from mirror.config import MirrorConfig
from mirror.config.schema import LoggerKind, WandbMode
from mirror.files import atomic_write

WANDB_DEFAULT_URL = "https://api.wandb.ai"


def wandb_base_url() -> str:
    """The server W&B will talk to, found as W&B finds it: `WANDB_BASE_URL`, else the `base_url` that
    `wandb login --host URL` keeps in W&B's settings file (`$WANDB_CONFIG_DIR/settings`, by default
    `~/.config/wandb/settings`), else W&B's own server."""
    if url := os.environ.get("WANDB_BASE_URL"):
        return url
    folder = Path(os.environ.get("WANDB_CONFIG_DIR") or Path("~", ".config", "wandb")).expanduser()
    settings = configparser.ConfigParser()
    try:
        settings.read(folder / "settings")
        return settings.get("default", "base_url", fallback=None) or WANDB_DEFAULT_URL
    except (OSError, configparser.Error):
        return WANDB_DEFAULT_URL


def wandb_host(url: str) -> str:
    """The netrc machine of a server URL: its host and any port (`https://wandb.example.org:8080/` ->
    `wandb.example.org:8080`), as `wandb login` writes it."""
    return urlsplit(url if "//" in url else f"https://{url}").netloc


def wandb_key_configured() -> bool:
    """An API key for the server W&B will talk to: `WANDB_API_KEY`, or an entry for that server's host in the
    netrc file that `wandb login` writes (`$NETRC`, by default `~/.netrc`)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = wandb_host(wandb_base_url())
    try:
        entry = netrc.netrc(os.environ.get("NETRC")).authenticators(host) if host else None
    except (OSError, netrc.NetrcParseError):
        return False
    return entry is not None and bool(entry[2])


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
    # W&B's own console messages (a dozen lines a run) off unless the user set WANDB_SILENT: where the run goes
    # is said in one line of ours
    os.environ.setdefault("WANDB_SILENT", "true")
    offline = w.mode == WandbMode.offline or (w.mode == WandbMode.auto and not wandb_key_configured())
    if offline and w.mode == WandbMode.auto:
        rank_zero_info(f"W&B offline: no API key for {wandb_host(wandb_base_url())} (set WANDB_API_KEY or run "
                       f"`wandb login`); upload later with `wandb sync {run_dir}/wandb/offline-run-*`")
    logger = WandbLogger(
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
    logger._wandb_init.pop("anonymous", None)  # Lightning always passes it; W&B warns that it has no effect
    return logger

