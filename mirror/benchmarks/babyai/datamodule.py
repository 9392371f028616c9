"""The BabyAI data module: expert episodes for the agent E, paired point-of-view clips for ViCLIP U.

A training row is one episode: its steps for behavioural cloning and, for the understanding branch, an
8-frame clip of a partner episode chosen by the alignment's positive rule (the same episode, a random
episode with the same mission, or a random episode of the same level).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

from mirror.benchmarks.babyai.demos import DemoSet, ensure_demos
from mirror.config import DataConfig, MirrorConfig, Positives
from mirror.config.inputs import makes
from mirror.data.module import MirrorDataModule
from mirror.data.paths import writable_folder
from mirror.data.sampling import Draw
from mirror.data.video import segment_frames, spanned
from mirror.errors import ConfigError
from mirror.models.protocol import DataSpec


@dataclass
class BabyAIDataConfig(DataConfig):
    levels: list[str] = field(default_factory=lambda: ["GoToLocal"])
    episodes: int = 5000  # training demonstrations per level
    val_episodes: int = 500  # held-out demonstrations per level
    root: str = makes("data/babyai")
    demo_seed: int = 0
    demo_workers: int = 2
    tile: int = 8  # pixels per cell of the point-of-view frames (8: 56 x 56)
    clip_frames: int = 8
    rollout_episodes: int = 100  # per level, at each validation and at the end
    rollout_workers: int = 2
    final_rollout_episodes: int = 500  # per level, after training
    test_episodes: int = 500  # `mirror eval`'s episodes per level, on test layouts
    test_repeats: int = 1  # `mirror eval`'s repeated evaluations (each samples actions afresh)
    rollout_video: int = 1  # episodes per level filmed at each validation (MP4 in the run, and to W&B)
    rollout_greedy: bool = False  # argmax actions; by default sample from the cloned policy (see README)
    batch_size: int = 128  # episodes per batch for the agent
    paired: int = 32  # the first `paired` episodes of a batch also get a partner clip for U and alignment


class Episodes:
    """All episodes of a split across levels, with the per-episode ids the batch keys need."""

    def __init__(self, sets: list[DemoSet], spec: DataSpec, first_id: int):
        self.sets = sets
        self.level = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
        self.local = np.concatenate([np.arange(len(s)) for s in sets])
        index = {m: i for i, m in enumerate(spec.instructions)}
        self.instruction = np.array([index[m] for s in sets for m in s.missions])
        self.episode_id = first_id + np.arange(len(self.level))
        self.by_instruction = {i: np.flatnonzero(self.instruction == i) for i in np.unique(self.instruction)}
        self.by_level = {i: np.flatnonzero(self.level == i) for i in range(len(sets))}

    def __len__(self) -> int:
        return len(self.level)

    def steps(self, e: int) -> dict[str, np.ndarray]:
        s = self.sets[self.level[e]]
        part = s.steps(int(self.local[e]))
        return {"images": s.images[part], "directions": s.directions[part], "actions": s.actions[part]}

    def frames(self, e: int) -> np.ndarray:
        return self.sets[self.level[e]].episode_frames(int(self.local[e]))


class BabyAIPairs(Dataset):
    """Episode rows with a partner clip; `Draw` keys (training) pick partners and frames at random."""

    def __init__(self, episodes: Episodes, positives: Positives, clip_frames: int):
        self.episodes, self.positives, self.clip_frames = episodes, positives, clip_frames

    def __len__(self) -> int:
        return len(self.episodes)

    def partner(self, e: int, rng: np.random.Generator | None) -> int:
        if rng is None or self.positives == Positives.episode:
            return e
        eps = self.episodes
        pool = eps.by_instruction[eps.instruction[e]] if self.positives == Positives.instruction else \
            eps.by_level[eps.level[e]]
        return int(rng.choice(pool))

    def __getitem__(self, key: Draw | int) -> dict:
        e, rng = (key.index, np.random.default_rng(key.seed)) if isinstance(key, Draw) else (key, None)
        eps = self.episodes
        partner = self.partner(e, rng)
        frames = eps.frames(partner)
        clip = frames[segment_frames(len(frames), self.clip_frames, rng)]
        ids = {"episode": int(eps.episode_id[e]), "instruction": int(eps.instruction[e]), "task": int(eps.level[e])}
        return {
            "understanding": {"video": clip, "instruction": int(eps.instruction[partner]),
                              "task": int(eps.level[partner])},
            "execution": {**eps.steps(e), "instruction": ids["instruction"]},
            "keys": ids,
        }


def collate(items: list[dict], paired: int | None = None) -> dict:
    """Pad episodes to the longest in the batch with a validity mask; stack the clips and ids of the
    first `paired` rows (all rows by default), which are the understanding-execution pairs."""
    pairs = items[:paired] if paired else items
    longest = max(len(it["execution"]["actions"]) for it in items)
    b = len(items)
    images = torch.zeros(b, longest, 7, 7, 3, dtype=torch.uint8)
    directions = torch.zeros(b, longest, dtype=torch.uint8)
    actions = torch.zeros(b, longest, dtype=torch.long)
    mask = torch.zeros(b, longest, dtype=torch.bool)
    for i, it in enumerate(items):
        ex = it["execution"]
        n = len(ex["actions"])
        images[i, :n] = torch.from_numpy(ex["images"])
        directions[i, :n] = torch.from_numpy(ex["directions"])
        actions[i, :n] = torch.from_numpy(ex["actions"].astype(np.int64))
        mask[i, :n] = True

    def ids(rows: list[dict], group: str, key: str) -> torch.Tensor:
        return torch.tensor([it[group][key] for it in rows], dtype=torch.long)

    return {
        "understanding": {
            "video": torch.from_numpy(np.stack([it["understanding"]["video"] for it in pairs])),
            "instruction": ids(pairs, "understanding", "instruction"),
            "task": ids(pairs, "understanding", "task"),
        },
        "execution": {"images": images, "directions": directions, "actions": actions, "mask": mask,
                      "instruction": ids(items, "execution", "instruction")},
        "keys": {k: ids(pairs, "keys", k) for k in ("episode", "instruction", "task")},
    }


class BabyAIData(MirrorDataModule):
    config_class = BabyAIDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        frames = getattr(cfg.understanding, "frames", cfg.data.clip_frames)
        if frames != cfg.data.clip_frames:
            raise ConfigError(f"data.clip_frames={cfg.data.clip_frames} but understanding.frames={frames}")
        if not 0 < cfg.data.paired <= cfg.data.batch_size:
            raise ConfigError(f"data.paired={cfg.data.paired} must be in 1..data.batch_size ({cfg.data.batch_size})")
        self.collate = functools.partial(collate, paired=cfg.data.paired)
        self.val_collate = collate
        self._splits: dict[str, list[DemoSet]] | None = None
        self._test_sets: list[DemoSet] | None = None
        self._spec: DataSpec | None = None

    def splits(self) -> dict[str, list[DemoSet]]:
        """Demonstrations of every level, generated on first use (one process at a time, others wait)."""
        if self._splits is None:
            d = self.cfg.data
            sets: dict[str, list[DemoSet]] = {"train": [], "val": []}
            root = writable_folder(d.root, "data.root")
            for level in d.levels:
                with FileLock(str(root / f".{level}.lock")):
                    try:
                        paths = ensure_demos(root, level, {"train": d.episodes, "val": d.val_episodes},
                                             d.demo_seed, d.tile, d.demo_workers)
                    except ValueError as err:
                        raise ConfigError(f"data.levels: {err}") from None
                for split, path in paths.items():
                    sets[split].append(DemoSet.load(path, level))
            self._splits = sets
        return self._splits

    def prepare_data(self) -> None:
        self.splits()

    @property
    def spec(self) -> DataSpec:
        if self._spec is None:
            splits = self.splits()
            missions = sorted({m for sets in splits.values() for s in sets for m in s.missions})
            self._spec = DataSpec(instructions=missions, tasks=list(self.cfg.data.levels))
        return self._spec

    def test_sets(self) -> list[DemoSet]:
        """Expert demonstrations on the test layouts (`mirror eval`'s rollout seeds), `data.test_episodes` per
        level, made on first use beside the training ones (loaded once per data module): used neither in
        training nor in choosing settings."""
        if self._test_sets is None:
            d = self.cfg.data
            root = writable_folder(Path(d.root) / "test", "data.root")
            self._test_sets = []
            for level in d.levels:
                with FileLock(str(root / f".{level}.lock")):
                    paths = ensure_demos(root, level, {"test": d.test_episodes}, d.demo_seed, d.tile, d.demo_workers)
                self._test_sets.append(DemoSet.load(paths["test"], level))
        return self._test_sets

    def clips(self, split: str, span: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """One evaluation clip per episode of a split (`test`: see `test_sets`), from the first `span` of the
        episode: (E, T, H, W, 3) frames, the episodes' mission and level indices. Missions the training data
        never showed have no index to be recognised as, and are left out."""
        sets = self.test_sets() if split == "test" else self.splits()[split]
        index = {m: i for i, m in enumerate(self.spec.instructions)}
        videos, labels, levels = [], [], []
        for level, demos in enumerate(sets):
            for e, mission in enumerate(demos.missions):
                if mission not in index:
                    continue
                frames = demos.episode_frames(e)
                videos.append(frames[segment_frames(spanned(len(frames), span), self.cfg.data.clip_frames)])
                labels.append(index[mission])
                levels.append(level)
        if not videos:
            return None
        return np.stack(videos), np.array(labels), np.array(levels)

    def episodes(self, split: str) -> Episodes:
        first = 0 if split == "train" else sum(len(s) for s in self.splits()["train"])
        return Episodes(self.splits()[split], self.spec, first)

    def train_set(self) -> Dataset:
        return BabyAIPairs(self.episodes("train"), self.cfg.align.positives, self.cfg.data.clip_frames)

    def val_set(self) -> Dataset:
        return BabyAIPairs(self.episodes("val"), self.cfg.align.positives, self.cfg.data.clip_frames)

    def rollout_runner(self):
        from mirror.benchmarks.babyai.rollouts import BabyAIRollouts

        return BabyAIRollouts(self.cfg, self.spec)

    def callbacks(self) -> list[Callback]:
        from mirror.benchmarks.babyai.summary import BabyAISummary
        from mirror.rollouts.evaluation import RolloutEvaluation

        runner = self.rollout_runner()
        return [RolloutEvaluation(runner, video=self.cfg.data.rollout_video), BabyAISummary(runner)]
