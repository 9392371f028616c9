"""Rollout evaluation during training: episodes sharded across DDP ranks, gathered, logged and plotted.

A runner (BabyAI, RLBench) knows its tasks, which episodes to run and how to run them in worker processes;
this callback only distributes, aggregates and reports, so every rank logs identical totals.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from mirror.errors import MissingExtra
from mirror.plots import bar_chart
from mirror.rollouts.episode import EpisodeResult, error_counts

COLUMNS = ("episodes", "successes", "reward", "length", "errors")


class RolloutRunner(Protocol):
    """Runs a data's evaluation episodes: `episodes` lists (task, index) pairs (the configured count, the
    final count, or `count` per task); `run` plays them (repeat r re-runs with fresh randomness) on the scenes
    of `split` (`rollout` during training, `test` in `mirror eval`), with each task's twin instruction when
    `twin`."""

    tasks: list[str]
    split: str
    twin: bool
    video: int  # episodes per task to film, in repeat 0
    video_fps: int
    videos: dict

    def episodes(self, final: bool, count: int | None = None) -> list[tuple[str, int]]: ...

    def run(self, module: L.LightningModule, episodes: list[tuple[str, int]], repeat: int = 0
            ) -> list[EpisodeResult]: ...

    def close(self) -> None: ...


def totals(results: list[EpisodeResult], tasks: list[str]) -> torch.Tensor:
    """Per task: episodes, successes, summed reward, summed length, errors."""
    out = torch.zeros(len(tasks), len(COLUMNS), dtype=torch.float64)
    for r in results:
        out[tasks.index(r.task)] += torch.tensor(
            [1, float(r.success), r.reward, r.length, float(r.error is not None)], dtype=torch.float64
        )
    return out


def metrics(summed: torch.Tensor, tasks: list[str], prefix: str) -> dict[str, float]:
    """Success rate (%), mean return and length per task and averaged over tasks, error counts."""
    out: dict[str, float] = {}
    for i, task in enumerate(tasks):
        n, wins, reward, length, errors = summed[i].tolist()
        if n == 0:
            continue
        out[f"{prefix}/success/{task}"] = 100 * wins / n
        out[f"{prefix}/return/{task}"] = reward / n
        out[f"{prefix}/length/{task}"] = length / n
        out[f"{prefix}/errors/{task}"] = errors
    rates = [out[f"{prefix}/success/{t}"] for t in tasks if f"{prefix}/success/{t}" in out]
    out[f"{prefix}/success"] = sum(rates) / max(1, len(rates))
    out[f"{prefix}/episodes"] = float(summed[:, 0].sum())
    out[f"{prefix}/errors"] = float(summed[:, 4].sum())
    return out


def gather_results(results: list[EpisodeResult]) -> list[EpisodeResult]:
    """Every rank's per-episode results, on every rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return results
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, [asdict(r) for r in results])
    return [EpisodeResult(**r) for part in parts for r in part]


def evaluate(trainer: L.Trainer, module: L.LightningModule, runner: RolloutRunner, final: bool,
             prefix: str) -> tuple[dict[str, float], list[EpisodeResult]]:
    """Run this rank's share of the episodes; returns the metrics of every rank's episodes (the same on every
    rank) and those episodes."""
    episodes = runner.episodes(final)
    everyone = gather_results(runner.run(module, episodes[trainer.global_rank :: trainer.world_size]))
    values = metrics(totals(everyone, runner.tasks), runner.tasks, prefix)
    values.update({f"{prefix}/errors_by_kind/{kind}": float(n) for kind, n in error_counts(everyone).items()})
    return values, everyone


def report(trainer: L.Trainer, values: dict[str, float], results: list[EpisodeResult], tasks: list[str],
           folder: Path, name: str, prefix: str) -> None:
    """Rank 0: per-episode CSV, success bar chart (PNG) and, with W&B, the table and the image."""
    if trainer.global_rank != 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(results[0]) if results else ["task"]))
        writer.writeheader()
        writer.writerows(asdict(r) for r in sorted(results, key=lambda r: (r.task, r.index)))
    rates = {t: values[f"{prefix}/success/{t}"] for t in tasks if f"{prefix}/success/{t}" in values}
    ran = {t: sum(r.task == t and not r.is_lost for r in results) for t in rates}
    png = bar_chart(rates, folder / f"{name}.png", f"success rate (%), step {trainer.global_step}", "success %",
                    counts=ran)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            rows = [[r.task, r.index, r.success, r.reward, r.length, r.error or "", r.cause, r.detail] for r in results]
            logger.log_table(f"{prefix}/episodes", ["task", "episode", "success", "reward", "length", "error", "cause",
                                                    "detail"], rows, step=trainer.global_step)
            logger.log_image(f"{prefix}/success_chart", [str(png)], step=trainer.global_step)


def save_videos(runner: RolloutRunner, folder: Path) -> dict[str, Path]:
    """Write the videos the runner filmed as MP4 into `folder` (named by task, seed and outcome) and forget
    them; returns the path of each task's first."""
    from mirror.rollouts.video import captioned, video_name, write_video

    first: dict[str, Path] = {}
    for (task, _, _), (result, frames) in sorted(runner.videos.items()):
        caption = f"{result.instruction or task}: {'success' if result.success else 'failure'}"
        if result.cause:
            caption += f" ({result.cause}: {result.detail})"
        name = video_name(task, result.seed, result.success)
        path = write_video(captioned(np.asarray(frames), caption), folder / name, runner.video_fps)
        first.setdefault(task, path)
    runner.videos.clear()
    return first


class RolloutEvaluation(L.Callback):
    """After every validation (every `trainer.val_every` steps), roll out the policy in its environment; the
    first `video` episodes of each task are filmed (`rollouts/videos/step<N>/`, and to W&B)."""

    def __init__(self, runner: RolloutRunner, prefix: str = "rollout", video: int = 0):
        self.runner, self.prefix, self.video = runner, prefix, video

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.runner.video = self.video
        try:
            values, results = evaluate(trainer, module, self.runner, final=False, prefix=self.prefix)
        finally:
            self.runner.video = 0
        module.log_dict(values, sync_dist=False)
        folder = Path(trainer.default_root_dir) / "rollouts"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"step{trainer.global_step:07d}"
        (folder / f"{name}.rank{trainer.global_rank}.json").write_text(json.dumps(values))  # what each rank logged
        report(trainer, values, results, self.runner.tasks, folder, name, self.prefix)
        try:
            videos = save_videos(self.runner, folder / "videos" / name)  # each rank films the episodes it ran
        except MissingExtra as err:  # training goes on without its videos
            rank_zero_warn(f"{err}; data.rollout_video=0 turns filming off")
            self.video, videos = 0, {}
        for logger in trainer.loggers if trainer.global_rank == 0 else []:
            if isinstance(logger, WandbLogger):
                for task, path in videos.items():
                    logger.log_video(f"{self.prefix}/video/{task}", [str(path)], step=trainer.global_step)

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self.runner.close()
