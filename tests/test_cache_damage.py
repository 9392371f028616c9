"""A damaged keyframe cache (an array cut short by a full disk or an interrupted copy, a file missing): the
Meta-World demos are recorded again, RLBench episodes rebuilt from their source, and a store opened without a
rebuild refuses the episode in one line naming its folder."""

import shutil

import numpy as np
import pytest

from mirror.benchmarks.metaworld.datamodule import MetaWorldData
from mirror.benchmarks.metaworld.demos import Request, generate
from mirror.benchmarks.metaworld.scene import CAMERAS
from mirror.benchmarks.rlbench.datamodule import RLBenchData
from mirror.benchmarks.rlbench.store import build_cache
from mirror.benchmarks.rlbench.synthetic import write_episode
from mirror.config import load_config
from mirror.data.keyframes.cache import ARRAYS, CacheStore, damaged
from mirror.errors import MirrorError
from tests.conftest import ROOT, TOY

TASK = "reach-v3"
REQUEST = Request(0, CAMERAS, 32, 4)
EPISODE = ("train", TASK, "episode0")


def truncate(name, size=1000):
    def damage(folder):
        with open(folder / name, "r+b") as f:
            f.truncate(size)
    return damage


def delete(name):
    return lambda folder: (folder / name).unlink()


def retype(folder):  # a whole file, but not what the cache writes
    depth = np.load(folder / "depth.npy")
    np.save(folder / "depth.npy", depth.astype(np.float32))


def reshape(folder):  # one clip frame fewer than meta.json lists
    np.save(folder / "clip.npy", np.load(folder / "clip.npy")[1:])


DAMAGE = {
    "rgb cut short": (truncate("rgb.npy"), r"rgb\.npy: cut short \(1000 of \d+ bytes\)"),
    "clip missing": (delete("clip.npy"), r"clip\.npy: missing"),
    "depth header cut": (truncate("depth.npy", 50), r"depth\.npy: unreadable header \("),
    "meta.json cut": (truncate("meta.json"), r"meta\.json: unreadable \("),
    "depth retyped": (retype, r"depth\.npy: float32 \(\d+, 4, 32, 32\), expected float16 \(\d+, 4, 32, 32\)"),
    "clip reshaped": (reshape, r"clip\.npy: uint8 \(3, 32, 32, 3\), expected uint8 \(4, 32, 32, 3\)"),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One Meta-World training episode at 32 px, recorded once; tests damage copies of it."""
    root = tmp_path_factory.mktemp("demos")
    generate(root, [TASK], {"train": 1}, REQUEST, workers=1)
    assert damaged(root.joinpath(*EPISODE)) is None
    return root


def copy(recorded, tmp_path):
    shutil.copytree(recorded, tmp_path / "demos")
    return tmp_path / "demos", tmp_path / "demos" / "train" / TASK / "episode0"


def same_episode(a, b):
    return (a / "meta.json").read_text() == (b / "meta.json").read_text() and all(
        np.array_equal(np.load(a / f"{n}.npy"), np.load(b / f"{n}.npy")) for n in ARRAYS)


@pytest.mark.parametrize("kind", ["rgb cut short", "clip missing", "meta.json cut"])
def test_a_damaged_metaworld_episode_is_recorded_again(recorded, tmp_path, kind):
    root, folder = copy(recorded, tmp_path)
    damage, reason = DAMAGE[kind]
    damage(folder)
    with pytest.warns(UserWarning, match=f"{folder}: damaged cache episode \\({reason}.*; recording it again"):
        generate(root, [TASK], {"train": 1}, REQUEST, workers=1)
    assert same_episode(folder, recorded.joinpath(*EPISODE))  # the same seed records the same episode
    store = CacheStore(root / "train", [(TASK, 0)])
    assert store.observation(0, 0)["rgb"].shape == (4, 32, 32, 3) and store.clip(0, 4, None).shape == (4, 32, 32, 3)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_store_opened_without_a_rebuild_names_the_damaged_episode_in_one_line(recorded, tmp_path, kind):
    root, folder = copy(recorded, tmp_path)
    damage, reason = DAMAGE[kind]
    damage(folder)
    with pytest.raises(MirrorError, match=f"^{folder}: damaged cache episode \\({reason}.*\\); `mirror train` "
                                          "rewrites it before training") as err:
        CacheStore(root / "train", [(TASK, 0)])
    assert "\n" not in str(err.value) and err.value.exit_code == 1


def test_the_metaworld_data_module_records_a_damaged_episode_again_and_loads_batches(tmp_path):
    cfg = load_config(ROOT / "configs/metaworld/mirror.yaml", [
        f"data.tasks=[{TASK}]", "data.episodes=1", "data.val_episodes=1", f"data.cache={tmp_path / 'demos'}",
        "data.image_size=32", "data.clip_pool=4", "data.demo_workers=1", "data.batch_size=1", "data.num_workers=0",
        "understanding.image_size=28", "execution.image_size=56", f"run.root={tmp_path}"])
    assert len(MetaWorldData(cfg).store("train").episodes) == 1
    folder = tmp_path / "demos" / "train" / TASK / "episode0"
    truncate("rgb.npy")(folder)
    data = MetaWorldData(cfg)
    with pytest.warns(UserWarning, match="rgb.npy: cut short"):
        assert len(data.store("train").episodes) == 1
    assert damaged(folder) is None
    batch = next(iter(data.train_dataloader()))
    assert batch["execution"]["rgb"].shape[:2] == (1, 4)


def rlbench_config(tmp_path):
    root = tmp_path / "raw"
    for i in range(2):
        write_episode(root, "open_drawer", i, frames=24, seed=i)
    return load_config(TOY, [
        "data.name=rlbench", f"data.root={root}", f"data.cache={tmp_path / 'cache'}", "data.tasks=[open_drawer]",
        "data.episodes=1", "data.val_episodes=1", "data.batch_size=2", "data.cache_workers=1",
        "understanding.name=tests.toy:ToyUnderstanding"])


@pytest.mark.parametrize("kind", ["rgb cut short", "clip missing", "meta.json cut"])
def test_a_damaged_rlbench_cache_episode_is_rebuilt_from_its_source(tmp_path, kind):
    cfg = rlbench_config(tmp_path)
    assert len(RLBenchData(cfg).store("train").episodes) == 1
    folder = tmp_path / "cache" / "raw" / "open_drawer" / "episode0"
    shutil.copytree(folder, tmp_path / "before")
    damage, reason = DAMAGE[kind]
    damage(folder)
    with pytest.warns(UserWarning, match=f"{folder}: damaged cache episode \\({reason}.*; rebuilding it from "):
        store = RLBenchData(cfg).store("train")
    assert len(store.episodes) == 1 and same_episode(folder, tmp_path / "before")
    keys = [("open_drawer", 0)]
    damage(folder)  # the command `mirror demos rlbench` runs
    with pytest.warns(UserWarning, match="rebuilding it"):
        assert build_cache(cfg.data.root, tmp_path / "cache" / "raw", keys, pool=cfg.data.clip_pool) == {}
    assert same_episode(folder, tmp_path / "before")
