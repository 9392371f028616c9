"""Meta-World on real MuJoCo: rendering and world points, keyframes, keyframe replay, demos, errors."""

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree

from mirror.benchmarks.metaworld import keyframes as keyframe_rule
from mirror.benchmarks.metaworld.control import SETTLED, STALL_STEPS, STALLED, move_to, replay
from mirror.benchmarks.metaworld.demos import Request, generate, record
from mirror.benchmarks.metaworld.env import candidate_seeds, scene_seed
from mirror.benchmarks.metaworld.keyframes import keyframes
from mirror.benchmarks.metaworld.scene import CAMERAS, OpenScenes, Scene
from mirror.benchmarks.metaworld.tasks import catalogue, task_text, twin_texts
from mirror.data.keyframes.points import world_points
from mirror.data.seeds import episode_seed
from mirror.errors import ConfigError

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
    assert all(seeds[s] in candidate_seeds(0, s, 0) for s in counts)
    info = meta["train"]["info"]
    assert info["variation"] == 0 and info["descriptions"] == task_text("reach-v3").texts(0)
    assert info["keyframes"][-1] == info["length"] - 1
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


# What each camera sees of push-v3's scene at seed 3 (the arm hides the hand and the puck from above).
IN_VIEW = {"corner": ("goal", "fingers", "puck"), "corner2": ("goal", "fingers", "puck"), "topview": ("goal",),
           "gripperPOV": ("goal", "fingers", "puck")}
COLOURS = {"goal": (1,), "puck": (2,), "fingers": (0, 1)}  # the channels each thing is painted in for the test


def project(point, pose, intrinsics):
    """Pixel (column, row) of a world point, from the camera-to-world pose and the intrinsics."""
    p = pose[:3, :3].T @ (point - pose[:3, 3])
    return intrinsics[0, 0] * p[0] / p[2] + intrinsics[0, 2], intrinsics[1, 1] * p[1] / p[2] + intrinsics[1, 2]


@pytest.fixture(scope="module")
def painted():
    """push-v3 with its goal painted green, its puck blue and the finger pads (and their sites) yellow."""
    scene = Scene("push-v3")
    m = scene.model
    m.site_rgba[m.site("goal").id] = (0, 1, 0, 1)
    for site in ("rightEndEffector", "leftEndEffector"):
        m.site_rgba[m.site(site).id] = (1, 1, 0, 1)
    for g in range(m.ngeom):
        body = m.body(m.geom_bodyid[g]).name
        paint = {"obj": (0, 0, 1, 1), "rightpad": (1, 1, 0, 1), "leftpad": (1, 1, 0, 1)}.get(body)
        if paint:
            m.geom_rgba[g], m.geom_matid[g] = paint, -1  # a material's colour would win over the geom's
    scene.reset(3)
    yield scene
    scene.close()


def things(scene: Scene) -> dict[str, tuple[np.ndarray, set[tuple[int, int]]]]:
    """Each thing's world position and its (object type, id) pairs in MuJoCo's segmentation."""
    import mujoco

    m, d = scene.model, scene.data
    geoms = {name: {(int(mujoco.mjtObj.mjOBJ_GEOM), g) for g in range(m.ngeom) if m.body(m.geom_bodyid[g]).name
                    in bodies} for name, bodies in (("puck", {"obj"}), ("fingers", {"rightpad", "leftpad"}))}
    return {"goal": (d.site_xpos[m.site("goal").id], {(int(mujoco.mjtObj.mjOBJ_SITE), m.site("goal").id)}),
            "puck": (d.xpos[m.body("obj").id], geoms["puck"]),
            "fingers": (d.site_xpos[m.site("rightEndEffector").id], geoms["fingers"] | {
                (int(mujoco.mjtObj.mjOBJ_SITE), m.site("rightEndEffector").id)})}


def test_every_camera_shows_known_things_where_its_matrices_project_them(painted):
    obs = painted.cameras.observe(painted.data)
    points = world_points(obs)
    where = things(painted)
    for c, camera in enumerate(CAMERAS):
        pose, intrinsics = obs["extrinsics"][c], obs["intrinsics"][c]
        segmentation = painted.cameras.segmentation(painted.data, camera)
        for name in IN_VIEW[camera]:
            centre, ids = where[name]
            u, v = (int(round(x)) for x in project(centre, pose, intrinsics))
            assert 0 <= u < 128 and 0 <= v < 128, (camera, name)
            assert tuple(segmentation[v, u][::-1]) in ids, (camera, name, segmentation[v, u])
            pixel = obs["rgb"][c, v, u].astype(int)
            others = [ch for ch in range(3) if ch not in COLOURS[name]]
            assert min(pixel[ch] for ch in COLOURS[name]) > 2 * max(pixel[ch] for ch in others) + 15, (camera, pixel)
            assert np.linalg.norm(points[c, v, u] - centre) < 0.03, (camera, name, points[c, v, u], centre)


def test_cameras_are_upright(painted):
    """Above the table is up in every side camera's image, and the robot's right is right from above."""
    obs = painted.cameras.observe(painted.data)
    table, above, right = np.array([0.0, 0.7, 0.0]), np.array([0.0, 0.7, 0.3]), np.array([0.2, 0.7, 0.0])
    for c, camera in enumerate(CAMERAS):
        pose, intrinsics = obs["extrinsics"][c], obs["intrinsics"][c]
        if camera in ("corner", "corner2"):
            assert project(above, pose, intrinsics)[1] < project(table, pose, intrinsics)[1] - 10, camera
        else:  # looking down: the robot's right (+x) is to the image's right
            assert project(right, pose, intrinsics)[0] > project(table, pose, intrinsics)[0] + 10, camera


def test_a_reset_scene_shows_where_its_objects_and_goal_are(reach):
    """Meta-World moves the goal after its last forward pass; the scene must not show the previous draw."""
    for seed in (0, 1):
        reach.reset(seed)
        assert np.allclose(reach.data.site_xpos[reach.model.site("goal").id], reach.base._target_pos)
        assert np.allclose(reach.obs[-3:], reach.base._target_pos)


def test_the_controller_arrives_at_targets_clipped_to_where_the_tool_centre_can_go(reach, monkeypatch):
    """The box is the TCP's: a target above it ends the move by arriving at its top, not by stalling short of
    the mocap's top; one below it reaches under the mocap's floor, as low as the TCP can go."""
    heights = []
    step = reach.step

    def recorded(action):
        obs = step(action)
        heights.append(reach.hand()[2])
        return obs

    monkeypatch.setattr(reach, "step", recorded)
    reach.reset(0)
    start = reach.hand()
    low, high = reach.reach()
    assert np.allclose(high - reach.base.mocap_high, start - reach.data.mocap_pos[0])
    move_to(reach, np.array([start[0], start[1], 1.0]), True)
    assert abs(reach.hand()[2] - high[2]) < SETTLED
    assert abs(heights[-1] - heights[-1 - STALL_STEPS]) > STALLED  # still moving: it arrived, it did not stall
    reach.reset(0)
    move_to(reach, np.array([start[0], start[1], -1.0]), True)
    assert reach.hand()[2] < reach.base.mocap_low[2] and abs(reach.hand()[2] - low[2]) < SETTLED


def test_demos_are_rewritten_when_a_keyframe_or_controller_constant_changes(tmp_path, monkeypatch):
    request = Request(0, CAMERAS, 32, 4)
    generate(tmp_path, ["reach-v3"], {"train": 1}, request, workers=1)
    rgb = tmp_path / "train" / "reach-v3" / "episode0" / "rgb.npy"
    stamp = rgb.stat().st_mtime_ns
    monkeypatch.setattr(keyframe_rule, "CORNER", keyframe_rule.CORNER / 2)
    generate(tmp_path, ["reach-v3"], {"train": 1}, request, workers=1)
    assert rgb.stat().st_mtime_ns != stamp


def test_variations_take_turns_and_follow_where_the_goal_was_placed(reach):
    text = task_text("reach-v3")
    seen = set()
    for index in range(8):
        seed, _ = scene_seed(reach, 0, "test", index)
        assert seed in candidate_seeds(0, "test", index)
        reach.reset(seed)
        goal = reach.base._target_pos
        v = text.variation(reach.place())
        words = text.words(v)
        assert v == index % 4 and words == {"side": "right" if goal[0] > 0 else "left",
                                            "height": "high" if goal[2] > 0.175 else "low"}
        seen.add(seed)
    assert len(seen) == 8
    ranges = [set(candidate_seeds(0, split, i, r)) for split in ("train", "test") for i in (0, 1) for r in (0, 1)]
    assert sum(map(len, ranges)) == len(set().union(*ranges))
    assert twin_texts("drawer-open-v3", 1) == task_text("drawer-close-v3").texts(1)


@pytest.mark.parametrize("entry, key", [
    ("reach-v3: [only one phrasing]", "reach-v3.say"),
    ("reach-v3: {say: ['go {side}', 'move {side}'], vary: {side: {of: goal, axis: w, at: 0, words: [l, r]}}}",
     "reach-v3.vary.side"),
    ("reach-v3: {say: ['go {side}', 'move there'], vary: {side: {of: goal, axis: x, at: 0, words: [l, r]}}}",
     "phrasing 'move there'"),
    ("reach-v3: {say: [a, b], twin: push-v3}", "reach-v3.twin"),
])
def test_bad_instruction_files_name_the_key(tmp_path, entry, key):
    path = tmp_path / "instructions.yaml"
    path.write_text(entry + "\n")
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        catalogue(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_process_keeps_its_latest_scenes_open_and_builds_a_closed_one_again_the_same(monkeypatch):
    closed = []
    close = Scene.close
    monkeypatch.setattr(Scene, "close", lambda self: closed.append(self.task) or close(self))
    scenes = OpenScenes(("corner",), 32, keep=2)
    try:
        first = scenes.get("reach-v3")
        first.reset(7)
        seen = first.inputs()
        scenes.get("push-v3")
        assert scenes.get("reach-v3") is first  # used again: now the most recent
        scenes.get("drawer-open-v3")
        assert list(scenes.open) == ["reach-v3", "drawer-open-v3"] and closed == ["push-v3"]
        scenes.get("push-v3")
        again = scenes.get("push-v3")
        assert closed == ["push-v3", "reach-v3"] and list(scenes.open) == ["drawer-open-v3", "push-v3"]
        rebuilt = scenes.get("reach-v3")
        rebuilt.reset(7)
        assert rebuilt is not first and again is scenes.open["push-v3"]
        for key, value in rebuilt.inputs().items():
            np.testing.assert_array_equal(value, seen[key], err_msg=key)
    finally:
        scenes.close()
    assert not scenes.open and closed[-2:] == ["push-v3", "reach-v3"]
