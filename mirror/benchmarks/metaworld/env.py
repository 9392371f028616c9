"""Rollouts of a keyframe policy in Meta-World: the seeded scenes of each split and the episode loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mirror.benchmarks.metaworld.control import move_to
from mirror.benchmarks.metaworld.failures import Failure, KeyPose, Plan, diagnose, expert_plan
from mirror.benchmarks.metaworld.scene import CAMERAS, IMAGE_SIZE, OpenScenes, Scene, camera_matrices
from mirror.benchmarks.metaworld.tasks import task_text, twin_texts
from mirror.data.keyframes.points import world_to_pixel
from mirror.data.seeds import episode_seed
from mirror.errors import ConfigError, MirrorError
from mirror.rollouts.episode import EpisodeResult
from mirror.rollouts.video import marked

MAX_KEYFRAMES = 15  # key poses per rollout episode
ATTEMPTS = 64  # candidate seeds per episode: for its variation and, in demonstrations, a succeeding expert
EPISODES, REPEATS = 1000, 15  # episode indices and evaluation repeats that fit a split's seed range
VIDEO_EVERY = 4  # env steps between the frames of a rollout video (Meta-World runs 80 env steps a second)
VIDEO_CAMERAS, VIDEO_SIZE = ("corner", "behindGripper"), 320  # the workspace, and the gripper's contact


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
    variation (told `twin`: the twin task's instruction for the same scene; `paraphrase`: the instruction's
    held-out paraphrase); the policy acts for at most `max_keyframes` key poses (or until the task's 500-step
    horizon)."""

    def __init__(self, base_seed: int, split: str = "rollout", cameras: tuple[str, ...] = CAMERAS,
                 size: int = IMAGE_SIZE, max_keyframes: int = MAX_KEYFRAMES):
        self.base_seed, self.split = base_seed, split
        self.max_keyframes = max_keyframes
        self.scenes = OpenScenes(cameras, size)
        self.frames: list[np.ndarray] = []  # the last episode's video, when it was asked for one

    def scene(self, task: str) -> Scene:
        return self.scenes.get(task)

    def run_episode(self, task: str, index: int, policy: Policy, repeat: int = 0, told: str = "instruction",
                    video: bool = False) -> EpisodeResult:
        """One episode; a failure's cause is read from its key poses against the expert's (`failures.py`).
        With `video`, `frames` holds `VIDEO_CAMERAS` side by side every `VIDEO_EVERY` env steps, the policy's
        key pose ringed red and the expert's green."""
        scene = self.scene(task)
        seed, _ = scene_seed(scene, self.base_seed, self.split, index, repeat)
        plan = expert_plan(scene, seed) if video else None
        scene.reset(seed)
        v = task_text(task).variation(scene.place())
        phrasings = twin_texts(task, v) if told == "twin" else task_text(task).texts(v)
        instruction = phrasings[1] if told == "paraphrase" else phrasings[0]
        poses: list[KeyPose] = []
        self.frames = []
        film = self._filmer(scene, plan, poses) if video else None
        if film is not None:
            film()
        while len(poses) < self.max_keyframes and not scene.success and scene.budget > 0:
            action = policy(scene.inputs(), instruction)
            asked, opens = np.asarray(action[:3], dtype=np.float64), bool(action[7] >= 0.5)
            pose = KeyPose(asked, asked, opens, scene.hand())
            poses.append(pose)  # the film marks it while the hand is under way
            pose.target = move_to(scene, asked, opens, film)
            pose.reached = scene.hand()
        result = EpisodeResult(task, index, scene.success, float(scene.success), len(poses), seed=seed,
                               instruction=instruction)
        if not scene.success:
            failure = self.diagnose(task, seed, poses, plan)
            result.cause, result.detail = failure.cause, failure.detail
        return result

    def diagnose(self, task: str, seed: int, poses: list[KeyPose], plan: Plan | None = None) -> Failure:
        """Why the episode from `seed` failed (`failures.diagnose`), against the expert and the twin's expert."""
        plan = plan or expert_plan(self.scene(task), seed)
        twin = task_text(task).twin
        return diagnose(poses, plan, expert_plan(self.scene(twin), seed) if twin else None, self.max_keyframes)

    def _filmer(self, scene: Scene, plan: Plan, poses: list[KeyPose]) -> Callable[[], None]:
        """The `watch` of a filmed episode: every `VIDEO_EVERY` env steps, each video camera with the key pose
        under way marked."""
        cameras = scene.cameras_for(VIDEO_CAMERAS, VIDEO_SIZE)

        def film() -> None:
            if scene.steps % VIDEO_EVERY:
                return
            k = len(poses)
            points = ([(poses[-1].target, "red")] if poses else []) + (
                [(plan.position[k - 1], "lime")] if 0 < k <= len(plan) else [])
            label = f"key pose {k} of {len(plan)}" if k else "start"
            views = []
            for name in VIDEO_CAMERAS:
                extrinsics, intrinsics = camera_matrices(scene.model, scene.data, name, VIDEO_SIZE)
                marks = [(u, v, colour) for (u, v, depth), (_, colour) in
                         zip(world_to_pixel(np.array([p for p, _ in points]).reshape(-1, 3), extrinsics, intrinsics),
                             points, strict=True) if depth > 0]
                views.append(marked(cameras.rgb(scene.data, name), marks, label if not views else ""))
            self.frames.append(np.concatenate(views, axis=1))

        return film

    def close(self) -> None:
        self.scenes.close()
