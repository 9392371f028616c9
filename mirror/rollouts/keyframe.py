"""Rollouts of a keyframe policy (ARP) in a simulator, one simulator per worker process, for any benchmark.

A worker builds the policy from the packed weights (on its GPU when there is one) and its own simulator
(the benchmark's `make_env(cfg, split)` for the runner's scenes, `rollout` during training or `test` in `mirror
eval`, whose `run_episode(task, index, policy, repeat, twin)` plays one episode); a job is one episode, so a
segfault or a hang past `data.rollout_timeout` costs one episode, recorded as an error, and a fresh worker
takes over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from mirror.config import MirrorConfig
from mirror.jobs import Progress
from mirror.models.protocol import DataSpec, Policy
from mirror.rollouts.episode import EpisodeResult
from mirror.rollouts.payload import build, pack, unpack
from mirror.rollouts.workers import JobError, RolloutPool

MakeEnv = Callable[[MirrorConfig, str], object]  # an importable top-level function: workers are spawned


class Worker:
    """The state of one rollout process: the policy (with its language cache) and a simulator."""

    def __init__(self, payload: bytes, make_env: MakeEnv, split: str):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if device.type == "cpu":
            torch.set_num_threads(1)
        self.cfg, model = build(payload)
        self.acting = Policy(model.to(device))
        self.env = make_env(self.cfg, split)

    def load(self, payload: bytes) -> Worker:
        self.acting.model.load_state_dict(unpack(payload)[2])
        return self

    def policy(self, inputs: dict[str, np.ndarray], instruction: str) -> np.ndarray:
        return self.acting.act(inputs, instruction)


_worker: Worker | None = None


def setup(make_env: MakeEnv, split: str, payload: bytes) -> Worker:
    """Worker side: the first payload builds the simulator and policy; later ones only swap the weights."""
    global _worker
    _worker = Worker(payload, make_env, split) if _worker is None else _worker.load(payload)
    return _worker


def run(worker: Worker, job: tuple[str, int, int, str, bool]):
    """One episode: its result, and with the video the frames (only then, so rollouts without one cost nothing
    more)."""
    task, index, repeat, told, video = job
    result = worker.env.run_episode(task, index, worker.policy, repeat, told=told, video=video)
    return (result, np.stack(worker.env.frames)) if video else result


class KeyframeRollouts:
    """A rollout runner: which evaluation episodes, run by a pool of simulator processes. Subclasses set
    `make_env`, the importable function that builds a worker's simulator from the config. `split` picks the
    scenes (`rollout` for validation, `test` for `mirror eval`), `told` what each episode hears (its
    `instruction`, its twin task's: `twin`, its held-out `paraphrase`); set them before the first `run`. The
    first `video` episodes of each task in repeat 0 are filmed (with `failures`, its first `video` failures,
    played once more: scenes and policy are deterministic): their frames are in `videos` after `run`."""

    make_env: MakeEnv

    def __init__(self, cfg: MirrorConfig, spec: DataSpec):
        self.cfg, self.spec = cfg, spec
        self.tasks = list(cfg.data.rollout_tasks or cfg.data.tasks)
        self.split, self.told, self.video, self.failures = "rollout", "instruction", 0, False
        self.videos: dict[tuple[str, int, int], tuple[EpisodeResult, np.ndarray]] = {}
        self.pool: RolloutPool | None = None

    def episodes(self, final: bool, count: int | None = None) -> list[tuple[str, int]]:
        n = count if count is not None else self.cfg.data.rollout_episodes
        return [(task, i) for task in self.tasks for i in range(n)]

    def run(self, module: torch.nn.Module, episodes: list[tuple[str, int]], repeat: int = 0) -> list[EpisodeResult]:
        if not episodes:
            return []
        films = repeat == 0 and not self.failures
        results = self._play(module, [(task, i, repeat, self.told, films and i < self.video) for task, i in episodes])
        if repeat == 0 and self.failures and self.video:
            filmed: Counter = Counter()
            again = []
            for r in results:
                if not r.success and not r.is_lost and filmed[r.task] < self.video:
                    filmed[r.task] += 1
                    again.append((r.task, r.index, repeat, self.told, True))
            if again:
                self._play(module, again, "filming failures")
        return results

    def _play(self, module: torch.nn.Module, jobs: list[tuple[str, int, int, str, bool]], what: str = ""
              ) -> list[EpisodeResult]:
        """Run the episode jobs in the pool; filmed ones go to `videos`, lost ones come back as errors."""
        if self.pool is None:
            d = self.cfg.data
            self.pool = RolloutPool(d.rollout_workers, partial(setup, type(self).make_env, self.split), run,
                                    timeout=d.rollout_timeout)
        name = "validation" if self.split == "rollout" else self.split
        shown = Progress(len(jobs), what or f"{name} rollouts, repeat {jobs[0][2]}")
        try:
            outcomes = self.pool.map(pack(self.cfg, self.spec, module.execution), jobs, shown.update)
        finally:
            shown.close()
        results = []
        for (task, i, repeat, _, _), outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, tuple):
                self.videos[(task, i, repeat)] = outcome
                outcome = outcome[0]
            results.append(EpisodeResult.lost(task, i, outcome.kind, outcome.detail)
                           if isinstance(outcome, JobError) else outcome)
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
