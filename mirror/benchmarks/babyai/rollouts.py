"""BabyAI rollouts of the execution model in worker processes, many environments stepped in lockstep.

Rollout episode i of a level uses the seed `episode_seed(demo_seed, split, i)`, the split being `rollout` for
the evaluations during training and `test` for `mirror eval`: layouts never seen in the demonstrations, the
same at every evaluation. Any execution model with `tokenize` and `act` works.
"""

from __future__ import annotations

import numpy as np
import torch

from mirror.benchmarks.babyai import env as babyai
from mirror.config import MirrorConfig
from mirror.data.seeds import episode_seed
from mirror.models.protocol import DataSpec
from mirror.rollouts.episode import EpisodeResult
from mirror.rollouts.payload import build as payload_build
from mirror.rollouts.payload import pack
from mirror.rollouts.workers import JobError, RolloutPool

EPISODES_PER_JOB = 25
VIDEO_TILE = 16  # pixels per grid cell in rollout videos
FILM_POOL = 20  # the filmed episodes are chosen among this many first ones


def load_policy(payload: bytes) -> torch.nn.Module:
    """Worker side: the execution model from the packed payload, one CPU thread per worker."""
    torch.set_num_threads(1)
    return payload_build(payload)[1]


def run_episodes(model: torch.nn.Module, job: tuple):
    """Roll out one job's episodes together: (levels, episode indices, seeds, greedy, repeat, filmed). Sampled
    actions use a generator seeded by the first episode seed and the repeat, so evaluations reproduce. Returns
    the results, and with filmed episodes also their videos (the whole grid at every step) by position."""
    levels, indices, seeds, greedy, repeat, filmed = job
    generator = torch.Generator().manual_seed(seeds[0] * 100 + repeat)
    envs = [babyai.make(level) for level in levels]
    obs = [babyai.reset(env, seed) for env, seed in zip(envs, seeds, strict=True)]
    films = {i: [envs[i].unwrapped.get_frame(tile_size=VIDEO_TILE)] for i in filmed}
    missions = [o["mission"] for o in obs]
    tokens = model.tokenize(missions)
    done = np.zeros(len(envs), dtype=bool)
    success = np.zeros(len(envs), dtype=bool)
    reward = np.zeros(len(envs))
    length = np.zeros(len(envs), dtype=int)
    state = None
    while not done.all():
        images = torch.from_numpy(np.stack([o["image"] for o in obs]))
        directions = torch.tensor([o["direction"] for o in obs])
        actions, state = model.act(tokens, images, directions, state, None if greedy else generator)
        for i, env in enumerate(envs):
            if done[i]:
                continue
            obs[i], r, terminated, truncated, _ = env.step(int(actions[i]))
            if i in films:
                films[i].append(env.unwrapped.get_frame(tile_size=VIDEO_TILE))
            length[i] += 1
            if terminated or truncated:
                done[i], reward[i], success[i] = True, r, terminated and r > 0
    for env in envs:
        env.close()
    results = [
        EpisodeResult(level, index, bool(success[i]), float(reward[i]), int(length[i]), seed=seed,
                      instruction=missions[i])
        for i, (level, index, seed) in enumerate(zip(levels, indices, seeds, strict=True))
    ]
    return (results, {i: np.stack(f) for i, f in films.items()}) if films else results


class BabyAIRollouts:
    """The rollout runner of the BabyAI data: which episodes (of `split`'s layouts), run by a pool of worker
    processes."""

    video_fps = 4  # one frame per step

    def __init__(self, cfg: MirrorConfig, spec: DataSpec):
        self.cfg, self.spec = cfg, spec
        self.tasks = list(cfg.data.levels)
        self.split, self.told, self.video = "rollout", "instruction", 0
        self.videos: dict[tuple[str, int, int], tuple[EpisodeResult, np.ndarray]] = {}
        self.pool: RolloutPool | None = None
        self._longest: dict[tuple[str, str], list[int]] = {}

    def filmed(self, level: str, available: int) -> set[int]:
        """The episodes filmed in repeat 0: of the first FILM_POOL (and `available`), the `video` whose expert
        needs the most steps, so that a video shows the agent finding its target, not a target one step away."""
        key = (level, self.split, min(FILM_POOL, available))
        if key not in self._longest:
            seeds = [episode_seed(self.cfg.data.demo_seed, self.split, i) for i in range(key[2])]
            steps = [len(babyai.expert_episode(level, s, tile=1).actions) for s in seeds]
            self._longest[key] = sorted(range(key[2]), key=lambda i: -steps[i])
        return set(self._longest[key][: self.video])

    def episodes(self, final: bool, count: int | None = None) -> list[tuple[str, int]]:
        d = self.cfg.data
        n = count if count is not None else d.final_rollout_episodes if final else d.rollout_episodes
        return [(level, i) for level in self.tasks for i in range(n)]

    def run(self, module: torch.nn.Module, episodes: list[tuple[str, int]], repeat: int = 0) -> list[EpisodeResult]:
        if not episodes:
            return []
        if self.pool is None:
            self.pool = RolloutPool(self.cfg.data.rollout_workers, load_policy, run_episodes)
        seed = self.cfg.data.demo_seed
        count = {lvl: 1 + max(i for level, i in episodes if level == lvl) for lvl, _ in episodes}
        film = {lvl: self.filmed(lvl, n) for lvl, n in count.items()} if repeat == 0 and self.video else {}
        jobs = []
        for start in range(0, len(episodes), EPISODES_PER_JOB):
            chunk = episodes[start : start + EPISODES_PER_JOB]
            filmed = [k for k, (lvl, i) in enumerate(chunk) if i in film.get(lvl, ())]
            jobs.append(([lvl for lvl, _ in chunk], [i for _, i in chunk],
                         [episode_seed(seed, self.split, i) for _, i in chunk], self.cfg.data.rollout_greedy, repeat,
                         filmed))
        outcomes = self.pool.map(pack(self.cfg, self.spec, module.execution), jobs)
        results = []
        for (levels, indices, *_), outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, JobError):
                pairs = zip(levels, indices, strict=True)
                results += [EpisodeResult.lost(lvl, i, outcome.kind, outcome.detail) for lvl, i in pairs]
                continue
            if isinstance(outcome, tuple):
                outcome, films = outcome
                self.videos.update({(outcome[k].task, outcome[k].index, repeat): (outcome[k], frames)
                                    for k, frames in films.items()})
            results += outcome
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
