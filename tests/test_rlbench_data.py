"""RLBench data: the real sample in ../shared/data, the safe unpickler, keyframes, cache, bad data, data module."""

import pickle

import numpy as np
import pytest
import torch

from mirror.benchmarks.rlbench import pickles
from mirror.benchmarks.rlbench.datamodule import RLBenchData
from mirror.benchmarks.rlbench.episode import BadEpisodeError, RawEpisode, samples
from mirror.benchmarks.rlbench.format import SCENE_BOUNDS, episode_folder
from mirror.benchmarks.rlbench.store import RawStore, build_cache
from mirror.benchmarks.rlbench.synthetic import _rlbench_classes, write_episode
from mirror.config import load_config
from mirror.data.keyframes.cache import CacheStore
from mirror.data.keyframes.points import world_points
from mirror.data.sampling import Draw
from tests.conftest import SHARED_DATA, TOY

REAL = SHARED_DATA / "rlbench"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/rlbench is not beside the checkout")


def reference_keyframes(demo, delta=0.1):
    """The PerAct heuristic written out plainly, frame by frame."""
    out, buffer, previous = [], 0, demo[0].gripper_open
    n = len(demo)
    for i in range(n):
        obs = demo[i]
        no_change = i < n - 2 and (obs.gripper_open == demo[i + 1].gripper_open
                                   and obs.gripper_open == demo[i - 1].gripper_open
                                   and demo[i - 2].gripper_open == demo[i - 1].gripper_open)
        small = np.allclose(obs.joint_velocities, 0, atol=delta)
        stopped = buffer <= 0 and small and i != n - 2 and no_change
        buffer = 4 if stopped else buffer - 1
        if i != 0 and (obs.gripper_open != previous or i == n - 1 or stopped):
            out.append(i)
        previous = obs.gripper_open
    if len(out) > 1 and out[-1] - 1 == out[-2]:
        out.pop(-2)
    return out


@needs_real
def test_real_episodes_load_with_keyframes_table_and_bounds():
    expected = {0: (2, "open the top drawer"), 1: (1, "open the middle drawer"), 2: (0, "open the bottom drawer")}
    lo, hi = np.array(SCENE_BOUNDS[:3]), np.array(SCENE_BOUNDS[3:])
    for index, (variation, text) in expected.items():
        ep = RawEpisode(episode_folder(REAL, "open_drawer", index), "open_drawer", index)
        assert ep.info.variation == variation and ep.info.descriptions[0] == text
        assert ep.info.keyframes == reference_keyframes(ep.demo)
        points = ep.points(0, "front").reshape(-1, 3)
        inside = points[((points > lo) & (points < hi)).all(axis=1)]
        counts, edges = np.histogram(inside[:, 2], bins=np.arange(0.6, 1.6, 0.01))
        assert abs(edges[counts.argmax()] + 0.005 - 0.75) < 0.03
        for sample in ep.info.samples:
            assert ((np.array(sample.pose[:3]) > lo) & (np.array(sample.pose[:3]) < hi)).all()
    assert RawEpisode(episode_folder(REAL, "open_drawer", 0), "open_drawer", 0).info.keyframes == [70, 85, 124]


def test_a_pickle_naming_any_other_global_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_Exploit(str(marker)))
    assert b"system" in payload
    (tmp_path / "low_dim_obs.pkl").write_bytes(payload)
    with pytest.raises(pickles.UnsafePickleError, match="refused global '(posix|os).system'"):
        pickles.load(tmp_path / "low_dim_obs.pkl")
    assert not marker.exists()


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.path}",)


def test_synthetic_episode_round_trips_through_raw_reader_and_cache(tmp_path):
    root, cache = tmp_path / "raw", tmp_path / "cache"
    for i in range(2):
        write_episode(root, "open_drawer", i, frames=30, variation=i, seed=i)
    keys = [("open_drawer", 0), ("open_drawer", 1)]
    raw = RawStore(root, keys)
    assert build_cache(root, cache, keys, pool=8) == {}
    cached = CacheStore(cache, keys)
    for e in range(2):
        assert cached.episodes[e] == raw.episodes[e]
        assert raw.episodes[e].keyframes == reference_keyframes(raw.raw[e].demo) == [10, 20, 29]
        for k in range(len(raw.episodes[e].samples)):
            a, b = raw.observation(e, k), cached.observation(e, k)
            assert np.array_equal(a["rgb"], b["rgb"])
            assert np.array_equal(a["extrinsics"], b["extrinsics"]) and np.array_equal(a["intrinsics"], b["intrinsics"])
            assert np.allclose(a["depth"], b["depth"].astype(np.float32), rtol=1e-3)
            assert np.allclose(world_points(a), world_points(b), atol=5e-3)
        assert np.array_equal(cached.clip(e, 8, None), raw.raw[e].front_frames(cached.clip_frames[e]))
    stamp = (cache / "open_drawer" / "episode0" / "rgb.npy").stat().st_mtime_ns
    build_cache(root, cache, keys, pool=8)
    assert (cache / "open_drawer" / "episode0" / "rgb.npy").stat().st_mtime_ns == stamp  # up to date: kept
    write_episode(root, "open_drawer", 0, frames=33, seed=5)
    build_cache(root, cache, keys, pool=8)
    assert CacheStore(cache, keys).episodes[0].length == 33  # source changed: rebuilt


def edit_demo(change):
    """Damage an episode's demo in place: unpickle it (trusted test data), change it, pickle it back."""

    def damage(folder):
        path = folder / "low_dim_obs.pkl"
        with _rlbench_classes():
            demo = pickle.loads(path.read_bytes())
            change(demo)
            path.write_bytes(pickle.dumps(demo))

    return damage


class _HugeArray:
    def __reduce__(self):
        return np.ndarray, ((10**6, 10**6),)


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "front_rgb" / "3.png").unlink(), "front_rgb: 29 frames, but low_dim_obs.pkl has 30"),
    (lambda f: (f / "wrist_depth" / "10.png").write_bytes(b"not a png"), "wrist_depth/10.png: unreadable PNG"),
    (lambda f: (f / "variation_number.pkl").unlink(), "variation_number.pkl: missing"),
    (lambda f: (f / "low_dim_obs.pkl").write_bytes(pickle.dumps(torch.nn.Linear)), "refused global 'torch.nn"),
    (edit_demo(lambda d: setattr(d._observations[5], "gripper_pose", np.array(["x"] * 7, dtype=object))),
     "refused array of dtype dtype\\('O'\\)"),
    (edit_demo(lambda d: setattr(d._observations[29], "gripper_pose", ["x"] * 7)),
     "cannot read the demo \\(ValueError: could not convert string to float"),
    (edit_demo(lambda d: delattr(d._observations[12], "joint_velocities")),
     "cannot read the demo \\(AttributeError: .*joint_velocities"),
    (edit_demo(lambda d: setattr(d._observations[3], "misc", _HugeArray())), "refused call of numpy.ndarray"),
])
def test_bad_episodes_fail_with_folder_and_file_or_are_skipped(tmp_path, damage, message):
    root = tmp_path / "raw"
    folder = write_episode(root, "open_drawer", 0, frames=30)
    write_episode(root, "open_drawer", 1, frames=30)
    damage(folder)
    keys = [("open_drawer", 0), ("open_drawer", 1)]
    with pytest.raises(BadEpisodeError, match=message) as err:
        build_cache(root, tmp_path / "cache", keys)
    assert str(folder) in str(err.value)
    with pytest.warns(UserWarning, match="skipped"):
        skipped = build_cache(root, tmp_path / "cache", keys, skip_bad=True)
    assert len(skipped) == 1 and len(CacheStore(tmp_path / "cache", keys).episodes) == 1


def synthetic_config(tmp_path, *extra):
    root = tmp_path / "raw"
    for task, variations in (("open_drawer", (0, 1)), ("close_jar", (0,))):
        for i in range(4):
            write_episode(root, task, i, frames=24, variation=variations[i % len(variations)], seed=i)
    return load_config(TOY, [
        "data.name=rlbench", f"data.root={root}", f"data.cache={tmp_path / 'cache'}",
        "data.tasks=[open_drawer,close_jar]",
        "data.episodes=3", "data.val_episodes=1", "data.batch_size=4", "data.cache_workers=1",
        "understanding.name=tests.toy:ToyUnderstanding", *extra,
    ])


def test_data_module_splits_pairs_and_samples_tasks_uniformly(tmp_path):
    cfg = synthetic_config(tmp_path)
    data = RLBenchData(cfg)
    assert data.spec.tasks == ["open_drawer", "close_jar"]
    assert len(data.spec.instructions) == 3  # two open_drawer variations, one close_jar
    train, val = data.train_set(), data.val_set()
    assert len(train) == 6 * 3 and len(val) == 2 * 3
    assert {ep.index for ep in data.store("val").episodes} == {3}
    weights = train.weights()
    tasks = train.task[[e for e, _ in train.items]]
    assert weights[tasks == 0].sum() == pytest.approx(weights[tasks == 1].sum())
    item = train[Draw(5, (0, 0, 5))]
    assert item["understanding"]["instruction"] == item["keys"]["instruction"]  # partner by instruction
    assert item["understanding"]["video"].shape == (8, 32, 32, 3)
    ex = item["execution"]
    assert ex["rgb"].shape == (4, 32, 32, 3) and ex["xyz"].shape == (4, 32, 32, 3) and ex["pose"].shape == (7,)
    batch = next(iter(data.train_dataloader()))
    assert batch["execution"]["xyz"].shape == (4, 4, 32, 32, 3) and batch["keys"]["task"].shape == (4,)


def test_a_cached_episode_whose_source_went_bad_is_dropped_and_counted(tmp_path):
    cfg = synthetic_config(tmp_path, "data.skip_bad=true")
    assert len(RLBenchData(cfg).store("train").episodes) == 6
    (episode_folder(tmp_path / "raw", "close_jar", 1) / "wrist_depth" / "7.png").unlink()
    with pytest.warns(UserWarning, match="close_jar/all_variations/episodes/episode1: wrist_depth: 23 frames"):
        store = RLBenchData(cfg).store("train")
    assert len(store.episodes) == 5 and len(store.skipped) == 1
    assert ("close_jar", 1) not in {(ep.task, ep.index) for ep in store.episodes}
    cfg.data.skip_bad = False
    with pytest.raises(BadEpisodeError, match="wrist_depth: 23 frames"):
        RLBenchData(cfg).store("train")


def test_demos_rlbench_needs_an_existing_source(cli, tmp_path):
    code, out, err = cli("demos", "rlbench", "--src", str(tmp_path / "nowhere"), "--dst", str(tmp_path / "cache"))
    assert code == 2 and err.strip() == f"mirror demos: error: --src: folder not found: {tmp_path / 'nowhere'}"
    (tmp_path / "empty").mkdir()
    code, out, err = cli("demos", "rlbench", "--src", str(tmp_path / "empty"), "--dst", str(tmp_path / "cache"))
    assert code == 2 and "no episodes of open_drawer" in err and not (tmp_path / "cache").exists()


@needs_real
def test_collision_label_is_the_keyframes_own_or_the_frame_befores(tmp_path):
    """ARP learns `ignore_collisions` of keyframe k, PerAct and RVT that of frame k - 1 (`data.collision_label`)."""
    ep = RawEpisode(episode_folder(REAL, "open_drawer", 0), "open_drawer", 0)
    flags = [float(ep.demo[t].ignore_collisions) for t in range(len(ep.demo))]
    assert [t for t in range(1, len(flags)) if flags[t] != flags[t - 1]] == [86]  # on just after keyframe 85
    assert [(s.ignore_collisions, s.ignore_collisions_before) for s in ep.info.samples] == [(0, 0), (0, 0), (1, 1)]
    at_flip = samples(ep.demo, [86, 124])[0]  # a keyframe where the flag turns on
    assert (at_flip.ignore_collisions, at_flip.ignore_collisions_before) == (1.0, 0.0)
    served = {}
    for label in ("keyframe", "previous"):  # synthetic episodes reopen the gripper as the flag turns on
        data = RLBenchData(synthetic_config(tmp_path, f"data.collision_label={label}"))
        train = data.train_set()
        served[label] = [float(train[i]["execution"]["ignore_collisions"]) for i in range(len(train))]
    flips = [i for i, (a, b) in enumerate(zip(served["keyframe"], served["previous"], strict=True)) if a != b]
    assert flips and all(served["keyframe"][i] == 1 and served["previous"][i] == 0 for i in flips)


def test_arps_default_workspace_is_rlbenchs():
    from mirror.models.execution.arp import ARPConfig

    assert ARPConfig().scene_bounds == list(SCENE_BOUNDS)


def pyrep_pointcloud(depth, extrinsics, intrinsics):
    """PyRep's `pointcloud_from_depth_and_camera_params` as it reads: invert the homogeneous world-to-pixel
    projection K [R^T | -R^T C] and apply it to (u d, v d, d, 1)."""
    h, w = depth.shape
    rotation, centre = extrinsics[:3, :3], extrinsics[:3, 3:]
    projection = np.vstack([intrinsics @ np.hstack([rotation.T, -rotation.T @ centre]), [0, 0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w]
    pixels = np.stack([u * depth, v * depth, depth, np.ones_like(depth)], axis=-1).reshape(-1, 4)
    return (pixels @ np.linalg.inv(projection).T)[:, :3].reshape(h, w, 3)


def test_world_points_are_pyreps_point_clouds_for_each_camera():
    """Per-camera rays are made once and kept: a second camera (and the first again) must not reuse another's."""
    rng = np.random.default_rng(3)
    cameras = []
    for f in (-110.0, 154.5):  # RLBench's negative focal lengths, Meta-World's positive ones
        extrinsics = np.eye(4)
        extrinsics[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        extrinsics[:3, 3] = rng.uniform(-1.5, 1.5, size=3)
        cameras.append((extrinsics, np.array([[f, 0.0, 31.5], [0.0, f, 23.5], [0.0, 0.0, 1.0]])))
    obs = {"depth": rng.uniform(0.3, 2.5, size=(3, 48, 64)).astype(np.float16),
           "extrinsics": np.stack([cameras[0][0], cameras[1][0], cameras[0][0]]),
           "intrinsics": np.stack([cameras[0][1], cameras[1][1], cameras[0][1]])}
    for _ in range(2):
        points = world_points(obs)
        assert points.dtype == np.float32 and points.shape == (3, 48, 64, 3)
        for c in range(3):
            reference = pyrep_pointcloud(obs["depth"][c].astype(np.float64), obs["extrinsics"][c], obs["intrinsics"][c])
            np.testing.assert_allclose(points[c], reference, atol=2e-6)
