"""`mirror eval`: a checkpoint's (or a config's zero-shot) validation metrics, U's recognition of held-out test
clips, and E's rollouts on the test scenes (never used while training or tuning: their own seed range, or the
stored test demos of RLBench), repeated `repeats` times, reported as success per task (mean +- sample std, the
paper's Table 2 layout).

Everything goes to `<run>/eval/<checkpoint or zero_shot>/` (`..._twin/` when each episode is told its twin
task's instruction, `..._paraphrase/` its instruction's held-out paraphrase): metrics.json, episodes.csv,
table.md, table.png, failures.md (Meta-World: failed episodes by cause), recognition.csv, confusion.png,
videos/, and to the run's W&B run (offline unless an API key is configured).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.loggers import WandbLogger
from tqdm import tqdm

from mirror.analysis import tables
from mirror.analysis.recognition import recognition
from mirror.config import load_config
from mirror.data.module import build_datamodule
from mirror.errors import ConfigError, MirrorError
from mirror.rollouts.evaluation import save_videos
from mirror.training.checkpoint import checkpoint_step, load_module
from mirror.training.logging import build_logger
from mirror.training.module import MirrorModule
from mirror.training.run import run_dir


@dataclass
class Rollouts:
    """What to roll out: task names (or 'all'), episodes per task and repeated evaluations (None: the data's
    `test_episodes` and `test_repeats`), and what each episode is told: its `instruction`, its twin task's
    (`twin`) or its instruction's held-out `paraphrase`."""

    tasks: list[str] | None = None
    episodes: int | None = None
    repeats: int | None = None
    told: str = "instruction"
    video: int = 0  # episodes per task filmed (in the first repeat)
    failures: bool = False  # film the first `video` failures of each task instead of the first episodes
    reuse: bool = False  # keep an evaluation of the same checkpoint step with the same request

    def request(self, overrides: Sequence[str]) -> dict:
        """What was asked for, as `metrics.json` records it (the video aside: it changes no figure)."""
        asked = {"tasks": self.tasks or ["all"], "episodes": self.episodes, "repeats": self.repeats,
                 "twin": self.told == "twin", "overrides": list(overrides)}
        return {**asked, "told": self.told} if self.told == "paraphrase" else asked


def validate(cfg, datamodule, module) -> dict[str, float]:
    if datamodule.val_set() is None:
        return {}
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision,
                        logger=False, enable_progress_bar=cfg.trainer.progress_bar, enable_model_summary=False)
    return {k: float(v) for k, v in trainer.validate(module, datamodule=datamodule, verbose=False)[0].items()}


def choose_tasks(runner, plan: Rollouts, datamodule) -> None:
    """Restrict the runner to the planned tasks (all by default, those with a twin for `twin`) and tell it what
    each episode hears; unknown tasks and data without twins or paraphrases fail before anything runs."""
    name = datamodule.cfg.data.name
    if plan.told == "twin":
        twins = datamodule.twin_tasks() if hasattr(datamodule, "twin_tasks") else []
        if not twins:
            raise ConfigError(f"--twin: the tasks of data '{name}' have no twins")
        runner.tasks = [t for t in runner.tasks if t in twins]
    if plan.told == "paraphrase" and not datamodule.spec.paraphrases:
        raise ConfigError(f"--paraphrase: the instructions of data '{name}' have no held-out paraphrases")
    runner.told = plan.told
    if plan.tasks and plan.tasks != ["all"]:
        unknown = [t for t in plan.tasks if t not in runner.tasks]
        if unknown:
            raise ConfigError(f"--tasks: {unknown} not among the tasks {runner.tasks}")
        runner.tasks = list(plan.tasks)


def rollouts(runner, module, episodes: int, repeats: int) -> list[list]:
    """Every repeat's per-episode results on the test scenes."""
    runner.split = "test"
    planned = runner.episodes(final=True, count=episodes)
    try:
        return [runner.run(module, planned, repeat=r) for r in tqdm(range(repeats), desc="evaluations")]
    finally:
        runner.close()


def run_of(ckpt: Path) -> Path:
    """The run directory of a checkpoint: periodic ones live in `<run>/checkpoints/`, SLURM's in `<run>/`."""
    ckpt = ckpt.resolve()
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def eval_folder(run: Path, name: str, told: str = "instruction") -> Path:
    """Where the evaluation of checkpoint `name` (or `zero_shot`) goes in the run."""
    return run / "eval" / (name if told == "instruction" else f"{name}_{told}")


def evaluate(ckpt: str | Path | None, overrides: Sequence[str] = (), config: str | Path | None = None,
             plan: Rollouts | None = None) -> tuple[dict, Path]:
    """Evaluate a checkpoint, or with `config` alone the (pretrained) models it builds: validation metrics,
    held-out recognition of the test clips, and rollouts on the test scenes."""
    plan = plan or Rollouts()
    asked = plan.request(overrides)
    step = None
    if ckpt is not None:
        ckpt = Path(ckpt)
        step = checkpoint_step(ckpt)
        done = eval_folder(run_of(ckpt), ckpt.stem, plan.told) / "metrics.json"
        if plan.reuse and done.is_file():
            before = json.loads(done.read_text())
            if before.get("step") == step >= 0 and before.get("request") == asked:
                print(f"{done.parent}: an evaluation of step {step} with the same request, kept (--reuse)")
                return before, done.parent
        cfg, datamodule, module = load_module(ckpt, overrides)
        run, name = run_of(ckpt), ckpt.stem
    elif config is not None:
        cfg = load_config(config, overrides)
        datamodule = build_datamodule(cfg)
        module = MirrorModule(cfg, datamodule.spec)
        run, name = run_dir(cfg), "zero_shot"
    else:
        raise ConfigError("give --ckpt CKPT, or an experiment config to evaluate its models zero-shot")
    d = cfg.data
    episodes = plan.episodes if plan.episodes is not None else getattr(d, "test_episodes", None)
    repeats = plan.repeats if plan.repeats is not None else getattr(d, "test_repeats", 1)
    out = eval_folder(run, name, plan.told)
    module.eval()
    runner = datamodule.rollout_runner() if module.execution is not None else None
    rolls = runner is not None and repeats > 0 and (episodes is None or episodes > 0)
    if rolls:
        choose_tasks(runner, plan, datamodule)
    if plan.failures:
        if not plan.video or not hasattr(runner, "failures"):
            raise ConfigError("--failures films failed episodes of keyframe benchmarks (Meta-World, RLBench) "
                              f"and needs --video N; got data '{d.name}', --video {plan.video}")
        runner.failures = True
    report: dict = {"checkpoint": str(ckpt) if ckpt else None, "step": step, "request": asked,
                    "metrics": validate(cfg, datamodule, module)}
    if module.understanding is not None and hasattr(datamodule, "clips") and plan.told == "instruction":
        report["metrics"].update(recognition(module.understanding, datamodule, "test", out))
    if rolls:
        runner.video = plan.video
        results = rollouts(runner, module, episodes, repeats)
        videos = save_videos(runner, out / "videos")
        stats, report["errors"] = tables.write(results, runner.tasks, cfg.run.name, out)
        report["success"] = {task: {"mean": m, "std": None if np.isnan(s) else s} for task, (m, s) in stats.items()}
        report["repeats"] = len(results)
        report["episodes"] = len(results[0]) // max(1, len(runner.tasks)) if results else 0
        report["tasks"] = list(runner.tasks)
        if hasattr(datamodule, "scene_novelty"):
            report["scene_novelty"] = datamodule.scene_novelty([e for repeat in results for e in repeat])
        log_to_wandb(cfg, run, out, stats, videos)
    if not report["metrics"] and "success" not in report:
        raise MirrorError(f"data '{cfg.data.name}' has neither a validation split nor rollouts to evaluate")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report, out


def log_to_wandb(cfg, run: Path, out: Path, stats: dict[str, tuple[float, float]], videos: dict[str, Path]) -> None:
    """The table, its chart and the first video of each task into the run's own W&B run (the id kept in the
    run directory)."""
    if not run.is_dir():
        return
    logger = build_logger(cfg, run)
    if isinstance(logger, WandbLogger):
        rows = [[task, mean, std] for task, (mean, std) in stats.items()]
        logger.log_table("eval/success", ["task", "mean", "std"], rows)
        logger.log_image("eval/success_chart", [str(out / "table.png")])
        for task, path in videos.items():
            logger.log_video(f"eval/video/{task}", [str(path)])
        logger.experiment.finish()
