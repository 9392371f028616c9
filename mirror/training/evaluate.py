"""`mirror eval`: a checkpoint's (or a config's zero-shot) validation metrics, and rollouts in the data's
environment repeated `repeats` times, reported as success per task (mean +- std, the paper's Table 2 layout).

Everything goes to `<run>/eval/<checkpoint or zero_shot>/`: metrics.json, episodes.csv, table.md, table.png,
and to the run's W&B run (offline unless an API key is configured).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from tqdm import tqdm

from mirror.config import load_config
from mirror.data.module import build_datamodule
from mirror.envs.episode import error_counts
from mirror.errors import ConfigError, MirrorError
from mirror.training import tables
from mirror.training.checkpoint import load_module
from mirror.training.logging import build_logger
from mirror.training.module import MirrorModule
from mirror.training.run import run_dir


@dataclass
class Rollouts:
    """What to roll out: task names (or 'all'), episodes per task, number of repeated evaluations."""

    tasks: list[str] | None = None
    episodes: int | None = None
    repeats: int = 1


def validate(cfg, datamodule, module) -> dict[str, float]:
    if datamodule.val_set() is None:
        return {}
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision,
                        logger=False, enable_progress_bar=cfg.trainer.progress_bar, enable_model_summary=False)
    return {k: float(v) for k, v in trainer.validate(module, datamodule=datamodule, verbose=False)[0].items()}


def choose_tasks(runner, plan: Rollouts) -> None:
    """Restrict the runner to the planned tasks (all by default); unknown ones fail before anything runs."""
    if plan.tasks and plan.tasks != ["all"]:
        unknown = [t for t in plan.tasks if t not in runner.tasks]
        if unknown:
            raise ConfigError(f"--tasks: {unknown} not among the data's tasks {runner.tasks}")
        runner.tasks = list(plan.tasks)


def rollouts(runner, module, plan: Rollouts) -> list[list]:
    """Every repeat's per-episode results."""
    episodes = runner.episodes(final=True, count=plan.episodes)
    try:
        return [runner.run(module, episodes, repeat=r) for r in tqdm(range(plan.repeats), desc="evaluations")]
    finally:
        runner.close()


def evaluate(ckpt: str | Path | None, overrides: Sequence[str] = (), config: str | Path | None = None,
             plan: Rollouts | None = None) -> tuple[dict, Path]:
    """Evaluate a checkpoint, or with `config` alone the (pretrained) models it builds."""
    if ckpt is not None:
        ckpt = Path(ckpt)
        cfg, datamodule, module = load_module(ckpt, overrides)
        run = ckpt.resolve().parent.parent
        name = ckpt.stem
    elif config is not None:
        cfg = load_config(config, overrides)
        datamodule = build_datamodule(cfg)
        module = MirrorModule(cfg, datamodule.spec)
        run, name = run_dir(cfg), "zero_shot"
    else:
        raise ConfigError("give --ckpt CKPT, or an experiment config to evaluate its models zero-shot")
    out = run / "eval" / name
    module.eval()
    plan = plan or Rollouts()
    runner = datamodule.rollout_runner() if module.execution is not None else None
    rolls = runner is not None and plan.repeats > 0 and (plan.episodes is None or plan.episodes > 0)
    if rolls:
        choose_tasks(runner, plan)
    report: dict = {"checkpoint": str(ckpt) if ckpt else None, "metrics": validate(cfg, datamodule, module)}
    if rolls:
        results = rollouts(runner, module, plan)
        stats = tables.write(results, runner.tasks, cfg.run.name, out)
        report["success"] = {task: {"mean": m, "std": s} for task, (m, s) in stats.items()}
        report["repeats"] = len(results)
        report["errors"] = error_counts([e for repeat in results for e in repeat])
        log_to_wandb(cfg, run, out, stats)
    if not report["metrics"] and "success" not in report:
        raise MirrorError(f"data '{cfg.data.name}' has neither a validation split nor rollouts to evaluate")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report, out


def log_to_wandb(cfg, run: Path, out: Path, stats: dict[str, tuple[float, float]]) -> None:
    """The table and its chart into the run's own W&B run (the id kept in the run directory)."""
    if not run.is_dir():
        return
    logger = build_logger(cfg, run)
    if isinstance(logger, WandbLogger):
        rows = [[task, mean, std] for task, (mean, std) in stats.items()]
        logger.log_table("eval/success", ["task", "mean", "std"], rows)
        logger.log_image("eval/success_chart", [str(out / "table.png")])
        logger.experiment.finish()
