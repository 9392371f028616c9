"""Rollouts of a keyframe policy in Meta-World: the seeded scenes of each split and the episode loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mirror.benchmarks.metaworld.control import move_to
from mirror.benchmarks.metaworld.scene import CAMERAS, FRONT, IMAGE_SIZE, Scene
from mirror.benchmarks.metaworld.tasks import task_text, twin_texts
from mirror.data.seeds import episode_seed
from mirror.errors import ConfigError, MirrorError
from mirror.rollouts.episode import EpisodeResult

MAX_KEYFRAMES = 15  # key poses per rollout episode
ATTEMPTS = 64  # candidate seeds per episode: for its variation and, in demonstrations, a succeeding expert
EPISODES, REPEATS = 1000, 15  # episode indices and evaluation repeats that fit a split's seed range
VIDEO_EVERY = 4  # env steps between the frames of a rollout video (Meta-World runs 80 env steps a second)


def candidate_seeds(base_seed: int, split: str, index: int, repeat: int = 0) -> list[int]:
    """The seeds episode `index` of a split may start from in evaluation repeat `repeat`, in order: disjoint
    for every (split, index, repeat), inside the split's seed range."""
    if not (0 <= index < EPISODES and 0 <= repeat < REPEATS):
        raise ConfigError(f"Meta-World scenes: episode index must be below {EPISODES} and repeat below {REPEATS}, "
                          f"got {index} and {repeat}")
    first = (repeat * EPISODES + index) * ATTEMPTS
    return [episode_seed(base_seed, split, first + a) for a in range(ATTEMPTS)]


def scene_seed(scene: Scene, base_seed: int, split: str, index: int, repeat: int = 0,
               accept: Callable[[int], bool] = lambda seed: True) -> tuple[int, int]:
    """Episode `index`'s seed: the first candidate whose scene is the episode's variation (index modulo the
    task's count, so variations take turns) and which `accept`s (e.g. the expert succeeds from it).
    Returns the seed and the number of candidates `accept` refused."""
    text = task_text(scene.task)
    refused = 0
    for seed in candidate_seeds(base_seed, split, index, repeat):
        scene.reset(seed)
        if text.variation(scene.place()) != index % text.count:
            continue
        if accept(seed):
            return seed, refused
        refused += 1
    raise MirrorError(f"{scene.task}: no scene of variation {index % text.count} among {ATTEMPTS} seeds for "
                      f"episode {index} ({refused} refused)")


Policy = Callable[[dict, str], np.ndarray]  # (observation inputs, instruction) -> 9-D action


class MetaWorldEnv:
    """Rollouts of a keyframe policy: episode i of a task in repeat r starts from `scene_seed` in the seed range
    of `split` (rollout: validation during training; test: `mirror eval`), with the instruction of its
    variation (or, with `twin`, the twin task's instruction for the same scene); the policy acts for at most
    `max_keyframes` key poses (or until the task's 500-step horizon)."""

    def __init__(self, base_seed: int, split: str = "rollout", cameras: tuple[str, ...] = CAMERAS,
                 size: int = IMAGE_SIZE, max_keyframes: int = MAX_KEYFRAMES):
        self.base_seed, self.split = base_seed, split
        self.camera_names, self.size, self.max_keyframes = cameras, size, max_keyframes
        self.scenes: dict[str, Scene] = {}
        self.frames: list[np.ndarray] = []  # the last episode's video, when it was asked for one

    def scene(self, task: str) -> Scene:
        if task not in self.scenes:
            self.scenes[task] = Scene(task, self.camera_names, self.size)
        return self.scenes[task]

    def run_episode(self, task: str, index: int, policy: Policy, repeat: int = 0, twin: bool = False,
                    video: bool = False) -> EpisodeResult:
        """One episode; with `video`, `frames` holds the front camera every `VIDEO_EVERY` env steps."""
        scene = self.scene(task)
        seed, _ = scene_seed(scene, self.base_seed, self.split, index, repeat)
        scene.reset(seed)
        v = task_text(task).variation(scene.place())
        instruction = (twin_texts(task, v) if twin else task_text(task).texts(v))[0]
        self.frames = []

        def film() -> None:
            if scene.steps % VIDEO_EVERY == 0:
                self.frames.append(scene.cameras.rgb(scene.data, FRONT))

        if video:
            film()
        keyframes = 0
        while keyframes < self.max_keyframes and not scene.success and scene.budget > 0:
            action = policy(scene.inputs(), instruction)
            move_to(scene, action[:3], bool(action[7] >= 0.5), film if video else None)
            keyframes += 1
        return EpisodeResult(task, index, scene.success, float(scene.success), keyframes, seed=seed,
                             instruction=instruction)

    def close(self) -> None:
        for scene in self.scenes.values():
            scene.close()
        self.scenes = {}
