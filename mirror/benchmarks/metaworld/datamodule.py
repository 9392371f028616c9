"""The Meta-World data module: keyframe samples of scripted-expert demonstrations (see `mirror.data.keyframes`).

The demonstrations are the cache: `<data.cache>/{train,val,test}/<task>/episode<i>/`, as `mirror demos
metaworld` writes them. Missing or outdated episodes are recorded before training starts (one process at a
time, the others wait), so `mirror train configs/metaworld/mirror.yaml` is the whole job; the test episodes
(the expert on `mirror eval`'s scenes, for held-out recognition) are recorded when an evaluation asks for them.
The instructions are every variation of the configured tasks (`instructions.yaml`), whether or not the
demonstrations happen to hold one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from filelock import FileLock

from mirror.benchmarks.metaworld.demos import Request, generate
from mirror.benchmarks.metaworld.scene import CAMERAS, MT10, check_tasks
from mirror.benchmarks.metaworld.tasks import task_text, variations
from mirror.config import MirrorConfig
from mirror.config.inputs import makes
from mirror.data.keyframes.cache import CacheStore
from mirror.data.keyframes.datamodule import KeyframeData, KeyframeDataConfig
from mirror.data.paths import writable_folder
from mirror.models.protocol import DataSpec


@dataclass
class MetaWorldDataConfig(KeyframeDataConfig):
    tasks: list[str] = field(default_factory=lambda: list(MT10))
    episodes: int = 20  # training demonstrations per task
    val_episodes: int = 5
    cache: str = makes("data/metaworld")  # the demonstrations themselves (`mirror demos metaworld --out`)
    demo_seed: int = 0  # base of the episode seeds (training, validation, rollout and test ranges are disjoint)
    demo_workers: int = 2
    image_size: int = 128  # camera images (square), in the demonstrations and in rollouts
    rollout_timeout: float = 300.0
    rollout_max_steps: int = 15  # key poses per rollout episode (the task's 500 env steps bound it too)


class MetaWorldData(KeyframeData):
    config_class = MetaWorldDataConfig

    def __init__(self, cfg: MirrorConfig):
        super().__init__(cfg)
        check_tasks(list(cfg.data.tasks), "data.tasks")
        check_tasks(list(cfg.data.rollout_tasks or []), "data.rollout_tasks")
        for task in cfg.data.tasks:
            task_text(task)

    def counts(self) -> dict[str, int]:
        d = self.cfg.data
        return {"train": d.episodes, "val": d.val_episodes, "test": d.test_episodes}

    def recorded(self, splits: tuple[str, ...]) -> Path:
        """The cache folder, with the demonstrations of `splits` brought up to date."""
        d = self.cfg.data
        root = writable_folder(d.cache, "data.cache")
        request = Request(d.demo_seed, CAMERAS, d.image_size, d.clip_pool)
        with FileLock(str(root / ".lock")):
            generate(root, d.tasks, {s: self.counts()[s] for s in splits}, request, d.demo_workers)
        return root

    @cached_property
    def demos(self) -> Path:
        """The cache folder, its training and validation demonstrations up to date (once per data module)."""
        return self.recorded(("train", "val"))

    def build_store(self, split: str) -> CacheStore:
        root = self.recorded(("test",)) if split == "test" else self.demos
        count = self.counts()[split]
        return CacheStore(root / split, [(task, i) for task in self.cfg.data.tasks for i in range(count)])

    @property
    def spec(self) -> DataSpec:
        if self._spec is None:
            _ = self.demos  # recorded before anything else: a bad cache fails before a run directory is made
            pairs = variations(self.cfg.data.tasks)
            self._spec = DataSpec(instructions=[task_text(t).texts(v)[0] for t, v in pairs],
                                  tasks=list(self.cfg.data.tasks),
                                  paraphrases=[task_text(t).texts(v)[1] for t, v in pairs])
        return self._spec

    def twin_tasks(self) -> list[str]:
        return [t for t in self.cfg.data.tasks if task_text(t).twin is not None]

    def scene_novelty(self, results: list) -> dict[str, dict[str, float]]:
        """Per task, how far (m) each evaluated scene's object and goal placement lies from the nearest training
        scene's: mean, min and max over the scenes."""
        from scipy.spatial.distance import cdist

        from mirror.benchmarks.metaworld.demos import episode_seed_of
        from mirror.benchmarks.metaworld.scene import Scene

        train = self.store("train")
        out = {}
        for task in self.cfg.data.tasks:
            tested = sorted({r.seed for r in results if r.task == task and r.seed >= 0})
            seen = [episode_seed_of(folder) for folder, ep in zip(train.dirs, train.episodes, strict=True)
                    if ep.task == task]
            if not tested or not seen:
                continue
            scene = Scene(task, cameras=())
            try:
                near = cdist([scene.placement(s) for s in tested], [scene.placement(s) for s in seen]).min(1)
            finally:
                scene.close()
            out[task] = {"mean": float(near.mean()), "min": float(near.min()), "max": float(near.max())}
        return out

    def missing_training(self) -> str:
        return f"data.episodes: no training demonstrations under {Path(self.cfg.data.cache) / 'train'}"

    def rollout_runner(self):
        from mirror.benchmarks.metaworld.rollouts import MetaWorldRollouts

        return MetaWorldRollouts(self.cfg, self.spec)
