"""Why a Meta-World rollout failed: the cause read from its key poses (made-up episodes, then real ones in the
simulator driven by the expert's key poses with one thing broken), the failure videos and the failure table."""

import numpy as np
import pytest

from mirror.analysis.tables import failure_causes
from mirror.benchmarks.metaworld.env import VIDEO_SIZE, MetaWorldEnv, scene_seed
from mirror.benchmarks.metaworld.failures import KeyPose, Plan, diagnose, expert_plan
from mirror.benchmarks.metaworld.scene import Cameras, Scene, camera_matrices
from mirror.data.keyframes.points import depth_to_world, world_to_pixel
from mirror.rollouts.episode import EpisodeResult

PLAN = Plan(np.array([[0.0, 0.6, 0.2], [0.0, 0.6, 0.05], [0.0, 0.6, 0.05], [0.1, 0.7, 0.2]]),
            np.array([True, True, False, False]))


def followed(plan: Plan, shift: dict[int, np.ndarray] | None = None, grip: dict[int, bool] | None = None,
             count: int | None = None) -> list[KeyPose]:
    """The plan's key poses as a policy's, key pose k moved by shift[k] and its gripper set to grip[k]."""
    poses = []
    for k in range(count if count is not None else len(plan)):
        target = plan.position[k] + (shift or {}).get(k, 0.0)
        poses.append(KeyPose(target.copy(), target.copy(), (grip or {}).get(k, bool(plan.open[k])), target.copy()))
    return poses


def test_each_cause_is_the_first_thing_that_went_wrong():
    assert diagnose(followed(PLAN), PLAN).cause == "precise"
    skipped = followed(PLAN)[1:]  # straight to the grasp's place: the approach waypoint is not needed
    assert diagnose(skipped, PLAN).cause == "precise"
    off = diagnose(followed(PLAN, shift={1: np.array([0.0, 0.03, -0.04]), 2: np.array([0.5, 0, 0])}), PLAN)
    assert (off.cause, off.keypose) == ("off", 2) and off.distance == pytest.approx(0.05)
    assert "3.0, -4.0" in off.detail
    late = diagnose(followed(PLAN, grip={2: True}), PLAN)  # a grasp cannot be skipped
    assert (late.cause, late.keypose) == ("gripper", 3)
    poses = followed(PLAN)
    poses[2].target = PLAN.position[2] + np.array([0.0, 0.0, 0.05])  # the grasp, held up by the floor of the box
    poses[2].asked = PLAN.position[2] + np.array([0.0, 0.0, -0.3])
    clipped = diagnose(poses, PLAN)
    assert (clipped.cause, clipped.keypose) == ("clipped", 3) and clipped.distance == pytest.approx(0.05)
    poses = followed(PLAN)
    poses[1].reached = poses[1].target + np.array([0.0, 0.04, 0.0])
    blocked = diagnose(poses, PLAN)
    assert (blocked.cause, blocked.keypose) == ("blocked", 2) and blocked.distance == pytest.approx(0.04)
    stuck = followed(PLAN, count=3) + [followed(PLAN)[2], followed(PLAN)[2]]  # the expert moves on after pose 3
    stuck[4].target = stuck[4].target + np.array([0.0, 0.005, 0.0])  # a stall jitters
    assert (diagnose(stuck, PLAN, max_keyposes=5).cause, diagnose(stuck, PLAN).keypose) == ("stall", 4)
    assert diagnose(followed(PLAN, count=3), PLAN, max_keyposes=3).cause == "keyposes"
    assert diagnose(followed(PLAN, count=3), PLAN, max_keyposes=15).cause == "horizon"
    twin = Plan(PLAN.position + np.array([0.0, 0.0, 0.1]), PLAN.open)
    assert diagnose(followed(twin), PLAN, twin).cause == "twin"
    assert diagnose(followed(PLAN), PLAN, twin).cause == "precise"


def test_world_to_pixel_inverts_depth_to_world():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    extrinsics = np.eye(4)
    extrinsics[:3, :3], extrinsics[:3, 3] = rotation, [0.3, -0.2, 1.5]
    intrinsics = np.array([[-110.0, 0.0, 63.5], [0.0, -110.0, 63.5], [0.0, 0.0, 1.0]])  # RLBench's signs
    depth = rng.uniform(0.5, 2.0, size=(8, 8))
    world = depth_to_world(depth, extrinsics, intrinsics).reshape(-1, 3)
    back = world_to_pixel(world, extrinsics, intrinsics)
    v, u = np.mgrid[0:8, 0:8]
    np.testing.assert_allclose(back[:, 0], u.ravel(), atol=1e-3)
    np.testing.assert_allclose(back[:, 1], v.ravel(), atol=1e-3)
    np.testing.assert_allclose(back[:, 2], depth.ravel(), atol=1e-5)


def replaying(plan: Plan, shift: dict[int, np.ndarray] | None = None, grip: dict[int, bool] | None = None,
              stop: int | None = None):
    """A policy that plays the plan's key poses in turn (changed as in `followed`), repeating key pose
    `stop` - 1 from then on."""
    calls = []

    def policy(inputs: dict, instruction: str) -> np.ndarray:
        k = min(len(calls), len(plan) - 1, *([stop - 1] if stop else []))
        calls.append(k)
        pose = followed(plan, shift, grip)[k]
        return np.array([*pose.target, 0.0, 0.0, 0.0, 1.0, float(pose.open), 0.0])

    return policy


@pytest.fixture(scope="module")
def pick_place():
    env = MetaWorldEnv(0, "test")
    seed, _ = scene_seed(env.scene("pick-place-v3"), 0, "test", 0)
    yield env, expert_plan(env.scene("pick-place-v3"), seed)
    env.close()


def test_a_replayed_expert_succeeds_and_each_broken_replay_fails_for_its_reason(pick_place):
    env, plan = pick_place
    assert not plan.open.all(), "pick-place closes the gripper"
    done = env.run_episode("pick-place-v3", 0, replaying(plan))
    assert done.success and done.cause == ""
    grasp = int(np.flatnonzero(~plan.open)[0])
    dropped = env.run_episode("pick-place-v3", 0, replaying(plan, grip={k: True for k in range(len(plan))}))
    assert not dropped.success and dropped.cause == "gripper" and f"key pose {grasp + 1} of" in dropped.detail
    aside = env.run_episode("pick-place-v3", 0, replaying(plan, shift={grasp: np.array([0.06, 0.0, 0.0])}))
    assert not aside.success and aside.cause == "off" and f"key pose {grasp + 1} of" in aside.detail
    assert "6.0 cm" in aside.detail
    stuck = env.run_episode("pick-place-v3", 0, replaying(plan, stop=2))
    assert not stuck.success and stuck.cause == "stall" and "key pose 3 of 4 not reached" in stuck.detail


def test_a_filmed_episode_shows_two_cameras_with_the_key_poses_ringed(pick_place):
    env, plan = pick_place
    result = env.run_episode("pick-place-v3", 0, replaying(plan, stop=2), video=True)
    frames = np.stack(env.frames)
    assert frames.shape[1:] == (VIDEO_SIZE, 2 * VIDEO_SIZE, 3)
    lime = np.all(frames == (0, 255, 0), axis=-1)
    red = np.all(frames == (255, 0, 0), axis=-1)
    assert lime.any() and red.any() and not result.success
    # the expert's first key pose is ringed where the corner camera projects it
    scene = env.scene("pick-place-v3")
    extrinsics, intrinsics = camera_matrices(scene.model, scene.data, "corner", VIDEO_SIZE)
    u, v, _ = world_to_pixel(plan.position[:1], extrinsics, intrinsics)[0]
    rows, cols = np.nonzero(lime[1, :, :VIDEO_SIZE])
    assert abs(cols.mean() - u) < 2 and abs(rows.mean() - v) < 2


def test_a_filmed_task_s_video_renderer_is_closed_with_its_scene(monkeypatch):
    """A worker films episodes of every task in turn: each video renderer must go when its scene does, or a
    worker holds one per task it ever filmed (16 tasks: 3.1 GB against 1.0 GB)."""
    live: set = set()
    made, close = Cameras.__init__, Cameras.close
    monkeypatch.setattr(Cameras, "__init__", lambda self, *a, **k: made(self, *a, **k) or live.add(self))
    monkeypatch.setattr(Cameras, "close", lambda self: live.discard(self) or close(self))
    env = MetaWorldEnv(0, "test", cameras=("corner",), size=32, max_keyframes=1)
    hold = lambda inputs, instruction: np.array([*env.scene(task).hand(), 0, 0, 0, 1, 1.0, 0.0])  # noqa: E731
    try:
        for task in ("reach-v3", "push-v3", "drawer-open-v3"):
            env.run_episode(task, 0, hold, video=True)
            assert env.frames and env.frames[0].shape == (VIDEO_SIZE, 2 * VIDEO_SIZE, 3)
        models = [s.model for s in env.scenes.open.values()]  # the two latest scenes (a failure's diagnosis opens one)
        assert sum(c.size == VIDEO_SIZE for c in live) >= 1 and sum(c.size == 32 for c in live) == len(models) == 2
        assert all(any(c.model is m for m in models) for c in live)
    finally:
        env.close()
    assert not live


def test_the_failure_table_counts_causes_per_task():
    results = [EpisodeResult("a", 0, False, 0.0, 3, seed=1, cause="off"),
               EpisodeResult("a", 1, False, 0.0, 3, seed=2, cause="off"),
               EpisodeResult("a", 2, True, 1.0, 3, seed=3),
               EpisodeResult("b", 0, False, 0.0, 3, seed=4, cause="stall"),
               EpisodeResult.lost("b", 1, "crash", "segfault")]
    table = failure_causes(results, ["a", "b"])
    assert "| a | 2 | 2 | 0 |" in table and "| b | 1 | 0 | 1 |" in table and "| all | 3 | 2 | 1 |" in table
    assert failure_causes([EpisodeResult("a", 0, False, 0.0, 3, seed=1)], ["a"]) is None


def test_twin_scenes_start_with_the_object_where_the_instructed_task_has_it():
    """The twin diagnosis plays the twin's expert from the same seed: door and faucet twins place their object
    alike, so that expert acts on the same door or faucet."""
    for task, twin in (("door-unlock-v3", "door-lock-v3"), ("faucet-open-v3", "faucet-close-v3")):
        a, b = Scene(task, ("corner",), 32), Scene(twin, ("corner",), 32)
        try:
            np.testing.assert_allclose(a.placement(7)[:2], b.placement(7)[:2], atol=0.03)
        finally:
            a.close(), b.close()
