"""`mirror train`: the run directory, resume, interruption, and the joint training run itself.

Nothing in the run directory is written before the checkpoint to resume from has been read and checked
against the config; SIGTERM or SIGINT stop training at the next step boundary with a checkpoint of that step
and a non-zero exit, so that the same command continues the run.
"""

from __future__ import annotations

import csv
import signal
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from mirror.config import MirrorConfig, save_config, to_dict
from mirror.data.module import build_datamodule
from mirror.errors import ConfigError, MirrorError
from mirror.plots import training_curves
from mirror.rollouts.evaluation import RolloutEvaluation
from mirror.training.checkpoint import check_fits, checkpoint_step, read_checkpoint
from mirror.training.logging import RunCSVLogger, build_logger
from mirror.training.module import MirrorModule, NonFiniteLossError
from mirror.training.phases import PhaseTimes
from mirror.training.trainer import build_trainer, cpu_threads, save_step


class TrainingInterrupted(MirrorError):
    """Training stopped by a signal after saving a checkpoint; exits 128 + the signal's number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def run_dir(cfg: MirrorConfig) -> Path:
    return Path(cfg.run.root) / cfg.run.name


def stepped_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """A run's checkpoints to resume from (periodic, last, SLURM's pre-requeue save; not the best-so-far) with
    the step each holds, the latest first (by that step, not by file time); -1 for an unreadable one."""
    found = [p for p in (directory / "checkpoints").glob("*.ckpt") if p.name != "best.ckpt"]
    found += list(directory.glob("hpc_ckpt_*.ckpt"))
    return sorted(((checkpoint_step(p), p) for p in sorted(found)), key=lambda item: item[0], reverse=True)


def checkpoints(directory: Path) -> list[Path]:
    """`stepped_checkpoints` without the steps."""
    return [p for _, p in stepped_checkpoints(directory)]


def latest_checkpoint(directory: Path) -> Path | None:
    found = checkpoints(directory)
    return found[0] if found else None


def resume_checkpoint(cfg: MirrorConfig, directory: Path) -> tuple[Path, dict] | None:
    """The checkpoint to continue from (path and contents), per `resume`; an unreadable checkpoint of
    `resume=auto` is skipped with a warning; refuses to overwrite a run that was not asked to resume."""
    if cfg.resume == "auto":
        found = stepped_checkpoints(directory)
        unreadable = [p for step, p in found if step < 0]  # tried first, so each is named in a warning
        for path in unreadable + [p for step, p in found if step >= 0]:
            try:
                return path, read_checkpoint(path)
            except MirrorError as err:
                warnings.warn(f"resume=auto: skipping {err}", stacklevel=2)
        return None
    if cfg.resume:
        path = Path(cfg.resume)
        if not path.is_file():
            raise ConfigError(f"resume: checkpoint not found: {path}")
        return path, read_checkpoint(path)
    if checkpoints(directory):
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


class RunStart(Callback):
    """Once the checkpoint (if any) has been restored: write the config and hyperparameters into the run."""

    def __init__(self, cfg: MirrorConfig, directory: Path):
        self.cfg, self.directory = cfg, directory

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        write_config(self.cfg, self.directory)
        for logger in trainer.loggers:
            logger.log_hyperparams(to_dict(self.cfg))


class Interruption(Callback):
    """When Lightning stops on SIGTERM (at a step boundary, on every rank alike), save that step."""

    def __init__(self):
        self.saved: Path | None = None

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.saved = save_step(trainer)


@contextmanager
def sigint_as_sigterm():
    """A first Ctrl-C stops like SIGTERM (a checkpoint, then exit); a second one interrupts at once."""
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.raise_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def report_phases(phases: PhaseTimes, directory: Path, trainer: L.Trainer) -> None:
    table = phases.finish(directory, trainer.global_rank)
    if trainer.is_global_zero:
        print(table, flush=True)


@rank_zero_only
def draw_curves(directory: Path, tasks: list[str]) -> None:
    """`<run>/plots/curves.png` from the run's CSV log (all its starts), when it has one."""
    log = directory / "csv" / "metrics.csv"
    if log.is_file():
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        training_curves(rows, directory / "plots" / "curves.png", directory.name, set(tasks))


def train(cfg: MirrorConfig, callbacks: Sequence[Callback] = ()) -> Path:
    """Train U and E jointly as configured; returns the run directory with config, checkpoints and logs."""
    phases = PhaseTimes()
    directory = run_dir(cfg)
    resume = resume_checkpoint(cfg, directory)
    step = resume[1].get("global_step", 0) if resume else 0
    if step > cfg.trainer.max_steps:
        raise ConfigError(f"trainer.max_steps={cfg.trainer.max_steps} is below step {step} of the checkpoint to "
                          f"resume ({resume[0]}); raise trainer.max_steps to continue training it")
    if resume is not None and step == cfg.trainer.max_steps:  # nothing to do: no data built, nothing written
        rank_zero_info(f"run directory: {directory}; complete at step {step} (trainer.max_steps), nothing to train")
        return directory
    threads = cpu_threads(cfg)
    if threads is not None:
        torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = MirrorModule(cfg, datamodule.spec)
    if resume is not None:
        check_fits(module, resume[1]["state_dict"], resume[0])
    directory.mkdir(parents=True, exist_ok=True)
    logger = build_logger(cfg, directory, resume[1].get("global_step") if resume else None)
    if isinstance(logger, WandbLogger):  # the CSV log too, for the learning curves drawn at the end
        logger = [logger, RunCSVLogger(directory, resume[1].get("global_step") if resume else None)]
    start, interruption = RunStart(cfg, directory), Interruption()
    brought = datamodule.callbacks()
    rolls = any(isinstance(c, RolloutEvaluation) for c in brought)
    trainer = build_trainer(cfg, directory, logger, [start, interruption, phases, *brought, *callbacks], best=rolls)
    ckpt = None
    if resume is not None:
        ckpt = resume[0]
        trainer.strategy.checkpoint_io.preloaded[str(ckpt)] = resume[1]
    rank_zero_info(f"run directory: {directory}" + (f"; resuming from {ckpt}" if ckpt else "")
                   + f"; torch threads per process: {torch.get_num_threads()}")
    with sigint_as_sigterm() as sigint:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
            report_phases(phases, directory, trainer)
            draw_curves(directory, datamodule.spec.tasks)
        except SIGTERMException:
            report_phases(phases, directory, trainer)
            signum = signal.SIGINT if sigint else signal.SIGTERM
            saved = interruption.saved or "none (stopped before the first step)"
            raise TrainingInterrupted(
                f"stopped by {signum.name} at step {trainer.global_step}; checkpoint: {saved}; "
                "the same command with resume=auto continues", signum) from None
        except NonFiniteLossError as err:
            periodic = sorted((directory / "checkpoints").glob("step*.ckpt"))
            kept = periodic[-1] if periodic else "none written yet"
            raise NonFiniteLossError(f"{err}; last good checkpoint: {kept}") from None
    return directory
