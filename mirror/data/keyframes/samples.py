"""The keyframe samples dataset: one item per keyframe sample, with a partner clip for the understanding model.

A store (the cache, or RLBench's raw folders) gives episode records, observations and clips; the partner clip
follows the alignment's positive rule (same episode, a random episode of the same instruction or task).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from mirror.config import Positives
from mirror.data.keyframes.points import world_points
from mirror.data.sampling import Draw
from mirror.models.protocol import DataSpec


class KeyframeSamples(Dataset):
    """Keyframe samples of a set of episodes, each with a partner clip for the understanding model."""

    def __init__(self, store, spec: DataSpec, positives: Positives, clip_frames: int, first_episode: int,
                 collision_before: bool = False, clip_span: float = 1.0):
        self.store, self.positives, self.clip_frames, self.clip_span = store, positives, clip_frames, clip_span
        self.collision_before = collision_before  # the flag of the frame before the keyframe (PerAct, RVT)
        index = {t: i for i, t in enumerate(spec.instructions)}
        episodes = store.episodes
        self.instruction = np.array([index[ep.descriptions[0]] for ep in episodes])
        self.task = np.array([spec.tasks.index(ep.task) for ep in episodes])
        self.episode_id = first_episode + np.arange(len(episodes))
        self.items = [(e, k) for e, ep in enumerate(episodes) for k in range(len(ep.samples))]
        self.groups = {
            Positives.instruction: {i: np.flatnonzero(self.instruction == i) for i in np.unique(self.instruction)},
            Positives.task: {i: np.flatnonzero(self.task == i) for i in np.unique(self.task)},
        }

    def __len__(self) -> int:
        return len(self.items)

    def weights(self) -> torch.Tensor:
        """Uniform over tasks, then over the task's samples."""
        tasks = self.task[[e for e, _ in self.items]]
        counts = np.bincount(tasks)
        return torch.as_tensor(1.0 / counts[tasks], dtype=torch.double)

    def partner(self, e: int, rng: np.random.Generator | None) -> int:
        if rng is None or self.positives == Positives.episode:
            return e
        key = self.instruction[e] if self.positives == Positives.instruction else self.task[e]
        return int(rng.choice(self.groups[self.positives][key]))

    def __getitem__(self, key: Draw | int) -> dict:
        i, rng = (key.index, np.random.default_rng(key.seed)) if isinstance(key, Draw) else (key, None)
        e, k = self.items[i]
        sample = self.store.episodes[e].samples[k]
        obs = self.store.observation(e, k)
        p = self.partner(e, rng)
        ids = {"episode": int(self.episode_id[e]), "instruction": int(self.instruction[e]), "task": int(self.task[e])}
        return {
            "understanding": {"video": self.store.clip(p, self.clip_frames, rng, self.clip_span),
                              "instruction": int(self.instruction[p]), "task": int(self.task[p])},
            "execution": {
                "rgb": obs["rgb"], "xyz": world_points(obs),
                "proprio": np.asarray(sample.proprio, dtype=np.float32),
                "pose": np.asarray(sample.pose, dtype=np.float32),
                "gripper_open": np.float32(sample.gripper_open),
                "ignore_collisions": np.float32(sample.ignore_collisions_before if self.collision_before
                                                else sample.ignore_collisions),
                "step": sample.step, "instruction": ids["instruction"], "task": ids["task"],
            },
            "keys": ids,
        }
