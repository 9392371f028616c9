"""RLBench evaluation against the fake `rlbench` / `pyrep` in tests/fakesim: the adapter, crashing and
hanging simulators, `mirror eval` tables, and the rollout callback under 2-process DDP."""

import csv
import inspect
import json
import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mirror.benchmarks.rlbench.env import MAX_STEPS, RLBenchEnv, error_kind
from mirror.benchmarks.rlbench.rollouts import RLBenchRollouts
from mirror.benchmarks.rlbench.synthetic import write_episode
from mirror.config import load_config
from mirror.errors import MirrorError
from mirror.models.execution.arp import ARP
from mirror.models.protocol import DataSpec
from tests.conftest import ROOT
from tests.test_arp import ARP_YAML, SMALL

FAKESIM = ROOT / "tests" / "fakesim"
CAMERAS = ("left_shoulder", "right_shoulder", "overhead", "wrist", "front")


@pytest.fixture
def fakesim(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKESIM))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKESIM), str(ROOT)]))
    yield
    for name in [m for m in sys.modules if m == "rlbench" or m.startswith(("rlbench.", "pyrep"))]:
        del sys.modules[name]


def write_test_episode(root, task: str, folder: str, variation: int = 0, seed: int = 0) -> None:
    """A stored test demo as RLBench's dataset generator leaves it: the scene's random state in the pickled
    Demo, the variation, and one image per observation in every camera's rgb and depth folder (empty files
    here: the evaluation must not decode them)."""
    from rlbench.backend.observation import Observation
    from rlbench.demo import Demo

    path = Path(root) / task / "all_variations" / "episodes" / folder
    for cam in CAMERAS:
        for kind in ("rgb", "depth"):
            (path / f"{cam}_{kind}").mkdir(parents=True, exist_ok=True)
            (path / f"{cam}_{kind}" / "0.png").touch()
    observation = Observation(**dict.fromkeys(inspect.signature(Observation).parameters))
    demo = Demo([observation], random_seed=np.random.RandomState(seed).get_state())
    (path / "low_dim_obs.pkl").write_bytes(pickle.dumps(demo))
    (path / "variation_number.pkl").write_bytes(pickle.dumps(variation))


def write_test_set(root, tasks, episodes: int) -> None:
    for task in tasks:
        for i in range(episodes):
            write_test_episode(root, task, f"episode{i}", variation=i % 3, seed=i)


def constant(action):
    return lambda inputs, instruction: np.asarray(action, dtype=np.float64)


def test_adapter_passes_clipped_actions_counts_failures_and_stops_at_25(fakesim, tmp_path):
    write_test_set(tmp_path, ["open_drawer", "push_buttons", "turn_tap"], 4)
    env = RLBenchEnv(str(tmp_path), headless=True)
    far = [5.0, -5.0, 0.0, 0, 0, 0, 1, 1, 0]
    result = env.run_episode("open_drawer", 0, constant(far))
    assert result.success is False and result.length == MAX_STEPS and result.error is None
    scene = env.task("open_drawer")._scene
    tip = scene.robot.arm.tip_pose  # where the planner took the gripper: the clipped target
    assert np.allclose(tip[:3], [scene._workspace_maxx, scene._workspace_miny, scene._workspace_minz], atol=1e-6)
    assert np.array_equal(tip[3:], far[3:7]) and scene.robot.gripper.open_amount == 1.0

    task = env.task("push_buttons")
    def reach_goal(inputs, instruction):
        assert inputs["rgb"].shape == (4, 128, 128, 3) and inputs["xyz"].shape == (4, 128, 128, 3)
        assert inputs["proprio"].shape == (3,) and instruction == "push buttons variation 0"
        return np.concatenate([task._task.goal, [0, 0, 0, 1, 1, 0]])
    win = env.run_episode("push_buttons", 3, reach_goal)
    assert win.success and win.length == 1 and win.reward == 1.0

    good = [0.2, 0.0, 1.0, 0, 0, 0, 1, 1, 0]
    assert env.run_episode("turn_tap", 0, constant(good)).error == "path"  # InvalidActionError from the planner's
    bad_quat = env.run_episode("open_drawer", 1, constant([0.2, 0.0, 1.0, 0, 0, 0, 3, 1, 0]))
    assert bad_quat.error == "invalid_action" and bad_quat.length == 1


def test_adapter_restores_the_nth_natural_sorted_demo_from_its_state_without_reading_images(fakesim, tmp_path,
                                                                                             monkeypatch):
    import rlbench.utils

    for folder, variation, seed in (("episode0", 0, 5), ("episode2", 2, 7), ("episode10", 1, 9)):
        write_test_episode(tmp_path, "open_drawer", folder, variation=variation, seed=seed)
    asked = []
    real = rlbench.utils.get_stored_demos
    monkeypatch.setattr(rlbench.utils, "get_stored_demos", lambda *a: asked.append(a[1]) or real(*a))
    env = RLBenchEnv(str(tmp_path), headless=True)
    seen = []
    episode = env.run_episode("open_drawer", 1, lambda inputs, text: seen.append(text) or np.zeros(9))
    assert seen == ["open drawer variation 2"] and episode.error == "invalid_action"  # a zero quaternion
    assert asked == [True]  # image_paths: the (empty) image files were never decoded
    np.random.seed(7)  # episode2's demo state: the scene is placed from it
    assert np.array_equal(env.task("open_drawer")._task.goal, np.random.uniform([0.0, -0.3, 0.8], [0.5, 0.3, 1.2]))
    with pytest.raises(MirrorError, match="no stored test episode 3"):
        env.run_episode("open_drawer", 3, constant(np.zeros(9)))
    for kind in ("rgb", "depth"):
        (tmp_path / "open_drawer/all_variations/episodes/episode0" / f"overhead_{kind}" / "0.png").unlink()
    with pytest.raises(RuntimeError, match="Broken dataset assumption"):  # every camera, as the fork demands
        env.run_episode("open_drawer", 0, constant(np.zeros(9)))


def test_error_kinds_follow_the_class_hierarchy_and_the_planner_cause(fakesim):
    from pyrep.errors import ConfigurationPathError, IKError
    from rlbench.backend.exceptions import InvalidActionError

    class WrappedInvalid(InvalidActionError):
        pass

    def raised(err, cause=None):
        try:
            raise err from cause
        except Exception as caught:
            return caught

    assert error_kind(raised(InvalidActionError("outside the workspace"))) == "invalid_action"
    assert error_kind(raised(WrappedInvalid("subclass"))) == "invalid_action"
    assert error_kind(raised(InvalidActionError("no path"), ConfigurationPathError())) == "path"
    assert error_kind(raised(type("SubPath", (ConfigurationPathError,), {})())) == "path"
    assert error_kind(raised(IKError())) == "ik"
    assert error_kind(raised(ValueError("a bug"))) is None


def small_arp_config(tmp_path, *extra):
    return load_config(ARP_YAML, SMALL + [
        f"data.test_root={tmp_path}", "data.rollout_max_steps=3", "data.rollout_workers=2",
        "data.rollout_timeout=10", "trainer.accelerator=cpu", *extra])


class Holder:
    def __init__(self, execution):
        self.execution = execution


def test_crashing_and_hanging_simulators_cost_one_episode_each(fakesim, tmp_path):
    write_test_set(tmp_path, ["open_drawer", "crash_task", "hang_task", "push_buttons"], 2)
    cfg = small_arp_config(tmp_path, "data.rollout_tasks=[open_drawer,crash_task,hang_task,push_buttons]")
    spec = DataSpec(["open the drawer"], list(cfg.data.rollout_tasks))
    runner = RLBenchRollouts(cfg, spec)
    episodes = [("open_drawer", 0), ("crash_task", 0), ("open_drawer", 1), ("hang_task", 0), ("push_buttons", 0),
                ("push_buttons", 1)]
    try:
        results = runner.run(Holder(ARP(cfg.execution, spec)), episodes)
    finally:
        runner.close()
    assert [(r.task, r.index) for r in results] == episodes
    errors = {(r.task, r.index): r.error for r in results}
    assert errors.pop(("crash_task", 0)) == "crash" and errors.pop(("hang_task", 0)) == "timeout"
    assert "exited with code" in results[1].detail and "no result within 10 s" in results[3].detail
    assert set(errors.values()) == {None}
    assert all(r.length == 3 for r in results if r.error is None)


def test_ddp_rollout_callback_runs_each_episode_once_and_ranks_agree(fakesim, tmp_path):
    write_test_set(tmp_path, ["open_drawer", "push_buttons"], 3)
    for i in range(4):
        write_episode(tmp_path / "raw", "open_drawer", i, frames=20, seed=i)
    log = tmp_path / "episodes.log"
    args = SMALL + [
        f"data.root={tmp_path / 'raw'}", "data.val_root=null", f"data.cache={tmp_path / 'cache'}",
        "data.tasks=[open_drawer]",
        "data.episodes=3", "data.val_episodes=1", "data.batch_size=2", "data.val_batch_size=2",
        "data.num_workers=0", "data.cache_workers=1", f"data.test_root={tmp_path}", "data.rollout_episodes=3",
        "data.rollout_tasks=[open_drawer,push_buttons]", "data.rollout_max_steps=2", "data.rollout_workers=1",
        "trainer.devices=2", "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.max_steps=2",
        "trainer.val_every=2", "trainer.ckpt_every=2", "trainer.sanity_val_steps=0", "logger=csv",
        f"run.root={tmp_path}", "run.name=ddp", "trainer.progress_bar=false",
    ]
    env = {**os.environ, "MIRROR_FAKESIM_LOG": str(log)}
    proc = subprocess.run([sys.executable, "-m", "mirror", "train", str(ARP_YAML), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = Counter((task, int(ep)) for task, ep, *_ in (line.split() for line in log.read_text().splitlines()))
    assert runs == Counter({(t, i): 1 for t in ("open_drawer", "push_buttons") for i in range(3)})
    ranks = [json.loads((tmp_path / "ddp" / "rollouts" / f"step0000002.rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and ranks[0]["rollout/episodes"] == 6


def test_mirror_eval_writes_the_table_2_layout(fakesim, cli, tmp_path):
    write_test_set(tmp_path, ["open_drawer", "push_buttons"], 2)
    for i in range(3):
        write_episode(tmp_path / "raw", "open_drawer", i, frames=20, seed=i)
    train_args = SMALL + [
        f"data.root={tmp_path / 'raw'}", "data.val_root=null", f"data.cache={tmp_path / 'cache'}",
        "data.tasks=[open_drawer]", "data.episodes=2", "data.val_episodes=1", "data.batch_size=2",
        "data.val_batch_size=2", "data.num_workers=0", "data.cache_workers=1", "trainer.devices=1",
        "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.max_steps=1", "trainer.val_every=0",
        "trainer.ckpt_every=1", "logger=csv", f"run.root={tmp_path}", "run.name=one", "trainer.progress_bar=false",
    ]
    assert cli("train", str(ARP_YAML), *train_args)[0] == 0
    code, out, err = cli("eval", "--ckpt", str(tmp_path / "one" / "checkpoints" / "last.ckpt"), "--tasks",
                         "open_drawer", "push_buttons", "--episodes", "2", "--repeats", "2",
                         f"data.test_root={tmp_path}", "data.rollout_max_steps=2", "data.rollout_workers=1",
                         "data.rollout_tasks=[open_drawer,push_buttons]")
    assert code == 0, err
    folder = tmp_path / "one" / "eval" / "last"
    table = (folder / "table.md").read_text().splitlines()
    assert table[0] == "| Method | Avg. Success | open_drawer | push_buttons |"
    assert table[2].startswith("| one | ") and "±" in table[2]
    rows = (folder / "episodes.csv").read_text().splitlines()
    assert rows[0] == "repeat,task,index,success,reward,length,error,detail,seed,instruction,cause"
    episodes = list(csv.DictReader(rows))
    assert len(episodes) == 2 * 2 * 2 and all(e["instruction"] for e in episodes)  # each told its instruction
    assert all(e["cause"] == "" for e in episodes)  # RLBench reads no failure causes
    assert table[-1] == "Episodes lost to errors: none"
    report = json.loads((folder / "metrics.json").read_text())
    assert report["repeats"] == 2 and set(report["success"]) == {"open_drawer", "push_buttons", "avg"}
    assert report["errors"] == {}
    assert "val/e/trans_err_cm" in report["metrics"]
    assert (folder / "table.png").stat().st_size > 1000
