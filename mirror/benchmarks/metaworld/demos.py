"""`mirror demos metaworld`: scripted-expert demonstrations of Meta-World tasks, written straight into the
keyframe cache that training reads (`mirror.data.keyframes.cache`, the RLBench path's format).

Episode i of a task and split starts from `scene_seed`: the first of its candidate seeds in the split's range
whose scene is variation i mod the task's count (`tasks.py`) and from which the scripted expert succeeds (it
fails on a few per cent of the scenes; such seeds are skipped and counted). Training, validation, rollout and
test scenes never share a seed, and an episode does not depend on the number of workers. Per keyframe sample
(see `keyframes.py`; the observation at the previous keyframe, the hand pose and gripper at the keyframe) the
cameras' RGB, depth and matrices, and `pool` front-camera frames per episode for clips. An episode is rewritten
when anything it is made from changes: the request, the task's instructions, or the constants of the
keyframe rule, the controller and the expert recording.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from mirror.benchmarks.metaworld.keyframes import keyframes
from mirror.benchmarks.metaworld.tasks import task_text
from mirror.data.keyframes.cache import episode_dir, is_current, pool_frames, read_meta, save_episode
from mirror.data.keyframes.records import EpisodeInfo, Sample
from mirror.data.paths import writable_folder
from mirror.jobs import run_jobs

SAMPLES_VERSION = 3  # 2: the orientation target is the identity (see `Scene.pose`); 3: upright cameras


def constants() -> dict[str, float]:
    """The constants an episode's keyframes and samples depend on: the keyframe rule's, the controller's and
    the expert recording's (changing one rewrites the cached episodes)."""
    from mirror.benchmarks.metaworld import control, env
    from mirror.benchmarks.metaworld import keyframes as rule

    names = {rule: ["STOP_SPEED", "CORNER"], env: ["ATTEMPTS"],
             control: ["AFTER_SUCCESS", "MOVE_STEPS", "GAIN", "SETTLED", "STALL_STEPS", "STALLED", "GRIP_STEPS",
                       "CLOSED", "OPEN"]}
    # keyed by the module's own name, so that moving the package does not rewrite the cache
    return {f"{module.__name__.rsplit('.', 1)[-1]}.{n}": getattr(module, n) for module, group in names.items()
            for n in group}


@dataclass(frozen=True)
class Request:
    """What a demonstration episode is made from; a cached episode made from another request is rewritten."""

    seed: int = 0
    cameras: tuple[str, ...] = ()
    size: int = 128
    pool: int = 32

    def fingerprint(self) -> dict:
        return {**asdict(self), "cameras": list(self.cameras), "metaworld": version("metaworld"),
                "mujoco": version("mujoco"), "samples": SAMPLES_VERSION, "constants": constants()}


def task_fingerprint(request: dict, task: str) -> dict:
    """What one task's episodes are made from: the request and the task's instructions and variations."""
    return {"request": request, "text": repr(task_text(task))}


def demo_samples(pose: np.ndarray, fingers: np.ndarray, keys: list[int], closed: list[bool]) -> list[Sample]:
    """One sample per keyframe: observation at the previous keyframe (frame 0, gripper open, for the first)."""
    out = []
    for j, k in enumerate(keys):
        before = keys[j - 1] if j else 0
        was_open = 0.0 if j and closed[j - 1] else 1.0
        out.append(Sample(
            obs_frame=before, target_frame=k, step=j, pose=[float(v) for v in pose[k]],
            gripper_open=0.0 if closed[j] else 1.0, ignore_collisions=0.0, ignore_collisions_before=0.0,
            proprio=[was_open, *(float(v) for v in fingers[before])],
        ))
    return out


_scenes: dict = {}  # (cameras, size) -> OpenScenes


def _scene(task: str, request: Request):
    from mirror.benchmarks.metaworld.scene import OpenScenes

    key = (tuple(request.cameras), request.size)
    if key not in _scenes:
        _scenes[key] = OpenScenes(*key)
    return _scenes[key].get(task)


@dataclass
class Demo:
    """One demonstration before rendering: the expert's trajectory, its record, and the seed it came from."""

    seed: int
    failed: int  # expert attempts skipped before this one
    trajectory: object  # mirror.benchmarks.metaworld.control.Trajectory
    info: EpisodeInfo


def record(scene, split: str, index: int, base_seed: int) -> Demo:
    """Episode `index` of a split: its scene (`scene_seed`, the expert succeeding), keyframes and samples."""
    from mirror.benchmarks.metaworld.control import expert
    from mirror.benchmarks.metaworld.env import scene_seed

    runs = {}

    def succeeds(seed: int) -> bool:
        runs[seed] = expert(scene, seed)
        return runs[seed].success

    seed, failed = scene_seed(scene, base_seed, split, index, accept=succeeds)
    trajectory = runs[seed]
    scene.reset(seed)
    text = task_text(scene.task)
    v = text.variation(scene.place())
    keys, closed = keyframes(trajectory.hand, trajectory.grip)
    samples = demo_samples(trajectory.pose, trajectory.fingers, keys, closed)
    info = EpisodeInfo(scene.task, index, v, text.texts(v), len(trajectory.physics), keys, samples)
    return Demo(seed, failed, trajectory, info)


def write_demo(job: tuple[Path, str, str, int, Request]) -> tuple[str, int]:
    """Record one episode into the cache; returns (task, failed expert attempts). Runs in worker processes."""
    from mirror.benchmarks.metaworld.scene import FRONT

    root, split, task, index, request = job
    scene = _scene(task, request)
    demo = record(scene, split, index, request.seed)
    physics = demo.trajectory.physics
    observations = []
    for sample in demo.info.samples:
        scene.restore(physics[sample.obs_frame])
        observations.append(scene.cameras.observe(scene.data))
    frames = pool_frames(demo.info.length, request.pool)
    clip = []
    for frame in frames:
        scene.restore(physics[frame])
        clip.append(scene.cameras.rgb(scene.data, FRONT))
    fingerprint = {**task_fingerprint(request.fingerprint(), task), "seed": demo.seed}
    save_episode(episode_dir(root / split, (task, index)), demo.info, observations, np.stack(clip), frames,
                 fingerprint)
    return task, demo.failed


def episode_seed_of(folder: Path) -> int:
    """The seed a cached demonstration episode was recorded from."""
    return read_meta(folder)["fingerprint"]["seed"]


def recorded_from(folder: Path, fingerprint: dict) -> bool:
    """Whether the cached episode in `folder` is whole and was made from what `task_fingerprint` describes."""
    return is_current(folder, lambda meta: {k: meta["fingerprint"].get(k) for k in fingerprint} == fingerprint,
                      "recording it again")


def _close_scenes() -> None:
    for scenes in _scenes.values():
        scenes.close()
    _scenes.clear()


def generate(root: str | Path, tasks: Sequence[str], counts: dict[str, int], request: Request,
             workers: int = 1) -> dict[str, int]:
    """Bring `root/<split>/<task>/episode<i>` up to date for `counts[split]` episodes per task; returns the
    number of failed expert attempts per task."""
    from mirror.benchmarks.metaworld.scene import check_tasks

    check_tasks(list(tasks))
    root = Path(root)
    request_print = request.fingerprint()
    prints = {task: task_fingerprint(request_print, task) for task in tasks}
    jobs = [(root, split, task, i, request) for split in counts for task in tasks for i in range(counts[split])
            if not recorded_from(episode_dir(root / split, (task, i)), prints[task])]
    failed = dict.fromkeys(tasks, 0)
    writable_folder(root, "--out")
    try:
        results = run_jobs(write_demo, jobs, workers, "metaworld demos")
    finally:
        _close_scenes()  # the scenes this process opened (with one worker)
    for task, attempts in results:
        failed[task] += attempts
    return failed


def main(argv: Sequence[str]) -> None:
    from mirror.benchmarks.metaworld.scene import CAMERAS, IMAGE_SIZE, MT10

    p = argparse.ArgumentParser(prog="mirror demos metaworld", description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(MT10), help="Meta-World v3 task names (default: MT10)")
    p.add_argument("--episodes", type=int, default=20, help="training episodes per task")
    p.add_argument("--val-episodes", type=int, default=5, help="validation episodes per task")
    p.add_argument("--test-episodes", type=int, default=0, help="test episodes per task (scenes of `mirror eval`)")
    p.add_argument("--out", default="data/metaworld", help="cache root: <out>/{train,val,test}/<task>/episode<i>/")
    p.add_argument("--seed", type=int, default=0, help="base of the episode seeds (data.demo_seed)")
    p.add_argument("--size", type=int, default=IMAGE_SIZE, help="camera image size (square)")
    p.add_argument("--pool", type=int, default=32, help="front-camera frames kept per episode for clips")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    request = Request(args.seed, CAMERAS, args.size, args.pool)
    counts = {"train": args.episodes, "val": args.val_episodes, "test": args.test_episodes}
    failed = generate(args.out, args.tasks, counts, request, args.workers)
    print(f"demos {args.out}: {len(args.tasks)} tasks x ({' + '.join(map(str, counts.values()))}) episodes ready; "
          f"expert failures skipped: {sum(failed.values())}")
