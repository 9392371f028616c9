"""Rollouts of a keyframe policy (ARP) in a simulator, one simulator per worker process, for any benchmark.

A worker builds the policy from the packed weights (on its GPU when there is one) and its own simulator
(the benchmark's `make_env(cfg, split)` for the runner's scenes, `rollout` during training or `test` in `mirror
eval`, whose `run_episode(task, index, policy, repeat, twin)` plays one episode); a job is one episode, so a
segfault or a hang past `data.rollout_timeout` costs one episode, recorded as an error, and a fresh worker
takes over.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from mirror.config import MirrorConfig
from mirror.envs.episode import EpisodeResult
from mirror.envs.payload import build, pack, unpack
from mirror.envs.workers import JobError, RolloutPool
from mirror.models.protocol import DataSpec

MakeEnv = Callable[[MirrorConfig, str], object]  # an importable top-level function: workers are spawned


class Worker:
    """The state of one rollout process: the policy, its language cache and a simulator."""

    def __init__(self, payload: bytes, make_env: MakeEnv, split: str):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        self.cfg, self.model = build(payload)
        self.model.to(self.device)
        self.language: dict[str, torch.Tensor] = {}
        self.env = make_env(self.cfg, split)

    def load(self, payload: bytes) -> Worker:
        self.model.load_state_dict(unpack(payload)[2])
        return self

    def policy(self, inputs: dict[str, np.ndarray], instruction: str) -> np.ndarray:
        if instruction not in self.language:
            self.language[instruction] = self.model.text_features([instruction])
        batch = {k: torch.from_numpy(v)[None].to(self.device) for k, v in inputs.items()}
        batch["language"] = self.language[instruction]
        with torch.no_grad():
            return self.model.act(batch)[0].cpu().numpy()


_worker: Worker | None = None


def setup(make_env: MakeEnv, split: str, payload: bytes) -> Worker:
    """Worker side: the first payload builds the simulator and policy; later ones only swap the weights."""
    global _worker
    _worker = Worker(payload, make_env, split) if _worker is None else _worker.load(payload)
    return _worker


def run(worker: Worker, job: tuple[str, int, int, bool]) -> EpisodeResult:
    task, index, repeat, twin = job
    return worker.env.run_episode(task, index, worker.policy, repeat, twin=twin)


class KeyframeRollouts:
    """A rollout runner: which evaluation episodes, run by a pool of simulator processes. Subclasses set
    `make_env`, the importable function that builds a worker's simulator from the config. `split` picks the
    scenes (`rollout` for validation, `test` for `mirror eval`), `twin` gives each episode its twin task's
    instruction; set them before the first `run`."""

    make_env: MakeEnv

    def __init__(self, cfg: MirrorConfig, spec: DataSpec):
        self.cfg, self.spec = cfg, spec
        self.tasks = list(cfg.data.rollout_tasks or cfg.data.tasks)
        self.split, self.twin = "rollout", False
        self.pool: RolloutPool | None = None

    def episodes(self, final: bool, count: int | None = None) -> list[tuple[str, int]]:
        n = count if count is not None else self.cfg.data.rollout_episodes
        return [(task, i) for task in self.tasks for i in range(n)]

    def run(self, module: torch.nn.Module, episodes: list[tuple[str, int]], repeat: int = 0) -> list[EpisodeResult]:
        if not episodes:
            return []
        if self.pool is None:
            d = self.cfg.data
            self.pool = RolloutPool(d.rollout_workers, partial(setup, type(self).make_env, self.split), run,
                                    timeout=d.rollout_timeout)
        jobs = [(task, i, repeat, self.twin) for task, i in episodes]
        outcomes = self.pool.map(pack(self.cfg, self.spec, module.execution), jobs)
        return [EpisodeResult.lost(task, i, o.kind, o.detail) if isinstance(o, JobError) else o
                for (task, i), o in zip(episodes, outcomes, strict=True)]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
