"""Meta-World on real MuJoCo: rendering and world points, keyframes, keyframe replay, demos, errors."""

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from mirror.data.keyframes.points import world_points
from mirror.data.metaworld.demos import Request, generate, record
from mirror.data.metaworld.keyframes import keyframes
from mirror.data.seeds import episode_seed
from mirror.envs.metaworld import CAMERAS, Scene, replay

WORKSPACE = (np.array([-0.3, 0.45, -0.01]), np.array([0.3, 0.9, 0.3]))


@pytest.fixture(scope="module")
def reach():
    scene = Scene("reach-v3")
    yield scene
    scene.close()


def table_top(scene: Scene) -> float:
    """The top face of the table's box geom, read from the model."""
    body = scene.model.body("tablelink").id
    box = next(g for g in range(scene.model.ngeom) if scene.model.geom_bodyid[g] == body
               and scene.model.geom_type[g] == 6)  # mjGEOM_BOX
    return float(scene.data.geom_xpos[box][2] + scene.model.geom_size[box][2])


def test_table_points_sit_at_the_table_height_and_two_cameras_agree(reach):
    reach.reset(episode_seed(0, "train", 0))
    obs = reach.cameras.observe(reach.data)
    assert obs["rgb"].shape == (len(CAMERAS), 128, 128, 3) and obs["rgb"].std() > 10
    points = world_points(obs)
    top = table_top(reach)
    clouds = {}
    for c, name in enumerate(CAMERAS):
        cloud = points[c].reshape(-1, 3)
        clouds[name] = cloud[((cloud > WORKSPACE[0]) & (cloud < WORKSPACE[1])).all(1)]
    for name in ("topview", "corner2"):
        z = clouds[name][:, 2]
        counts, edges = np.histogram(z, bins=np.arange(-0.01, 0.3, 0.002))
        assert abs(edges[counts.argmax()] + 0.001 - top) < 0.003, name
    distance, _ = cKDTree(clouds["topview"]).query(clouds["corner2"])
    assert np.median(distance) < 0.01


def test_keyframes_of_a_made_up_path_stops_gripper_changes_corners_and_the_end():
    def ease(a, b, n):  # accelerate and brake, as the scripted experts do
        s = (1 - np.cos(np.linspace(0, np.pi, n))) / 2
        return a + (b - a) * s[:, None]

    a, b, c, d = np.zeros(3), np.array([0.2, 0, 0]), np.array([0.2, 0.2, 0]), np.array([0.2, 0.2, 0.2])
    path = np.concatenate([ease(a, b, 21), ease(b, c, 21)[1:], np.linspace(c, d, 21)[1:]])  # 61 frames
    path[41:] += np.array([0.1, 0, 0]) * np.sin(np.linspace(0, np.pi, 20))[:, None]  # an arc: one corner
    grip = np.full(60, -1.0)
    grip[15:] = 1.0  # closes while still moving towards the stop at frame 20
    keys, closed = keyframes(path, grip)
    assert keys[:2] == [20, 40] and keys[-1] == 60 and len(keys) == 4 and 45 <= keys[2] <= 55
    assert closed == [True, True, True, True]
    grip[15:] = 0.0
    assert keyframes(path, grip)[1] == [False] * 4


@pytest.mark.parametrize("task", ["pick-place-v3", "drawer-open-v3"])
def test_replaying_only_the_keyframes_solves_the_task_and_ignoring_the_gripper_does_not(task):
    scene = Scene(task)
    try:
        for index in range(2):
            demo = record(scene, "train", index, 0)
            targets = [(np.array(s.pose[:3]), bool(s.gripper_open)) for s in demo.info.samples]
            assert replay(scene, demo.seed, targets), (task, index)
        if task == "pick-place-v3":
            assert not replay(scene, demo.seed, [(t, True) for t, _ in targets])
    finally:
        scene.close()


def test_demos_are_deterministic_by_seed_disjoint_by_split_and_kept_when_current(tmp_path):
    counts = {"train": 1, "val": 1}
    request = Request(0, CAMERAS, 32, 4)
    for name in ("a", "b"):
        generate(tmp_path / name, ["reach-v3"], counts, request, workers=1)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 12
    for f in files:
        a, b = tmp_path / "a" / f, tmp_path / "b" / f
        if f.suffix == ".npy":
            assert np.array_equal(np.load(a), np.load(b)), f
        else:
            assert a.read_text() == b.read_text()
    meta = {s: json.loads((tmp_path / "a" / s / "reach-v3" / "episode0" / "meta.json").read_text())
            for s in counts}
    seeds = {s: m["fingerprint"]["seed"] for s, m in meta.items()}
    assert seeds == {"train": episode_seed(0, "train", 0), "val": episode_seed(0, "val", 0)}
    assert len({*seeds.values(), episode_seed(0, "rollout", 0)}) == 3
    info = meta["train"]["info"]
    assert info["descriptions"][0] == "reach the goal" and info["keyframes"][-1] == info["length"] - 1
    assert all(sample["pose"][3:] == [0.0, 0.0, 0.0, 1.0] for sample in info["samples"])  # see Scene.pose
    rgb = tmp_path / "a" / "train" / "reach-v3" / "episode0" / "rgb.npy"
    stamp = rgb.stat().st_mtime_ns
    generate(tmp_path / "a", ["reach-v3"], counts, request, workers=1)
    assert rgb.stat().st_mtime_ns == stamp
    generate(tmp_path / "c", ["reach-v3"], {"train": 1, "val": 0}, Request(1, CAMERAS, 32, 4), workers=1)
    other = np.load(tmp_path / "c" / "train" / "reach-v3" / "episode0" / "rgb.npy")
    assert not np.array_equal(other[0], np.load(rgb)[0])


def test_bad_task_names_and_paths_are_one_line_errors(cli, tmp_path):
    code, _, err = cli("demos", "metaworld", "--tasks", "reach-v9", "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "unknown Meta-World task 'reach-v9'" in err
    assert "did you mean 'reach-v3'" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = cli("demos", "metaworld", "--tasks", "reach-v3", "--out", str(blocker))
    assert code == 2 and err.count("\n") == 1 and f"--out: cannot create folder {blocker}" in err
