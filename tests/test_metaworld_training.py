"""configs/metaworld/mirror.yaml in miniature on real MuJoCo: demos built by the data module, a joint run
rolling out in simulator worker processes, `mirror eval`'s table, `mirror report`, worker faults, bad input."""

import csv
import json
import shutil

import imageio.v3 as iio
import numpy as np
import torch

from mirror.benchmarks.metaworld.demos import episode_seed_of
from mirror.benchmarks.metaworld.env import VIDEO_SIZE, MetaWorldEnv, candidate_seeds
from mirror.benchmarks.metaworld.failures import CAUSES
from mirror.config import load_config
from mirror.models.execution.arp import ARP
from mirror.models.protocol import DataSpec
from mirror.training.checkpoint import read_checkpoint
from tests.conftest import ROOT
from tests.metaworld_faults import CRASH, HANG, FaultyRollouts
from tests.test_rlbench_eval import Holder

MIRROR_YAML = ROOT / "configs/metaworld/mirror.yaml"
TASK = "reach-v3"


def outcome(row: dict) -> str:
    return "success" if row["success"] == "True" else "failure"


def tiny(tmp_path, name: str) -> list[str]:
    """One task, 2 + 1 demonstrations at 32 px, tiny models; 2 training steps, then 2 rollouts of 2 key poses."""
    return [f"data.tasks=[{TASK}]", "data.episodes=2", "data.val_episodes=1", "data.test_episodes=2",
            "data.test_repeats=2", f"data.cache={tmp_path / 'demos'}",
            "data.image_size=32", "data.clip_pool=4", "data.demo_workers=1", "data.batch_size=2",
            "data.val_batch_size=2", "data.num_workers=0", "data.rollout_episodes=2", "data.rollout_max_steps=2",
            "data.rollout_workers=2", "understanding.image_size=28", "execution.image_size=56",
            "trainer.max_steps=2", "trainer.val_every=2", "trainer.ckpt_every=2", "trainer.sanity_val_steps=0",
            "optim.warmup_steps=1", "logger=csv", f"run.root={tmp_path}", f"run.name={name}",
            "trainer.progress_bar=false"]


def test_tiny_joint_run_rolls_out_in_mujoco_then_eval_and_report_write_the_tables(cli, tmp_path):
    code, _, err = cli("train", str(MIRROR_YAML), *tiny(tmp_path, "tiny"))
    assert code == 0, err
    run = tmp_path / "tiny"
    record = json.loads((run / "validation" / "step0000002.json").read_text())
    for key in (f"val/u/recognition/{TASK}", "val/align/recall1", "val/e/trans_err_cm", "val/e/trans_err1_cm",
                f"rollout/success/{TASK}"):
        assert key in record, key
    assert record["rollout/episodes"] == 2 and record["rollout/errors"] == 0
    with open(run / "rollouts" / "step0000002.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["task"], r["index"], r["error"]) for r in rows] == [(TASK, "0", ""), (TASK, "1", "")]
    assert all(r["success"] == "True" or r["length"] == "2" for r in rows)  # played to the key-pose limit
    best = read_checkpoint(run / "checkpoints" / "best.ckpt")  # by rollout/success; here the only validation
    assert best["global_step"] == 2
    filmed = list((run / "rollouts" / "videos" / "step0000002").glob("*.mp4"))
    assert [p.name for p in filmed] == [f"{TASK}-seed{rows[0]['seed']}-{outcome(rows[0])}.mp4"]

    code, out, err = cli("eval", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--video", "2")  # 2 x 2 scenes
    assert code == 0, err
    folder = run / "eval" / "last"
    table = (folder / "table.md").read_text().splitlines()
    assert table[0] == f"| Method | Avg. Success | {TASK} |" and table[2].startswith("| tiny | ")
    assert table[-1] == "Episodes lost to errors: none"
    with open(folder / "episodes.csv") as f:
        episodes = list(csv.DictReader(f))
    assert sorted((e["repeat"], e["index"]) for e in episodes) == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    report = json.loads((folder / "metrics.json").read_text())
    assert report["repeats"] == 2 and set(report["success"]) == {TASK, "avg"} and report["errors"] == {}
    for kind in ("instruction@0.25", "instruction@0.5", "instruction@1", "paraphrase@1"):
        assert 0 <= report["metrics"][f"recognition/{kind}"] <= 1, kind
    assert (folder / "confusion.png").is_file() and (folder / "recognition.csv").is_file()
    films = sorted(p.name for p in (folder / "videos").glob("*.mp4"))  # both episodes of the first repeat
    assert films == sorted(f"{TASK}-seed{e['seed']}-{outcome(e)}.mp4" for e in episodes if e["repeat"] == "0")
    frames = iio.imread(folder / "videos" / films[0], plugin="FFMPEG")
    assert frames.shape[2:] == (2 * VIDEO_SIZE, 3) and frames.shape[1] > VIDEO_SIZE and len(frames) >= 2  # captioned
    assert frames[0, :8].mean() > 200 and all(e["instruction"] for e in episodes)
    novelty = report["scene_novelty"][TASK]
    assert 0 < novelty["min"] <= novelty["mean"] <= novelty["max"] < 0.5

    tested = {int(e["seed"]) for e in episodes}  # fresh scenes in each repeat, in the test range, never trained on
    demos = {episode_seed_of(folder) for split in ("train", "val")
             for folder in (tmp_path / "demos" / split).glob(f"{TASK}/episode*")}
    with open(run / "rollouts" / "step0000002.csv") as f:
        validation = {int(r["seed"]) for r in csv.DictReader(f)}
    assert len(tested) == 4 and not tested & demos and not tested & validation
    assert all(seed in candidate_seeds(0, "test", i, r) for seed, i, r in
               ((int(e["seed"]), int(e["index"]), int(e["repeat"])) for e in episodes))

    code, _, err = cli("eval", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--twin")
    assert code == 2 and "--twin: the tasks of data 'metaworld' have no twins" in err
    code, _, err = cli("eval", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--paraphrase", "--repeats", "1")
    assert code == 0, err
    told = json.loads((run / "eval" / "last_paraphrase" / "metrics.json").read_text())
    assert told["request"]["told"] == "paraphrase" and "recognition/instruction@1" not in told["metrics"]
    with open(run / "eval" / "last_paraphrase" / "episodes.csv") as f:
        heard = [e["instruction"] for e in csv.DictReader(f)]
    assert len(heard) == 2 and all(h.startswith("move the gripper to the ") for h in heard), heard

    code, out, err = cli("report", str(run), "--out", str(tmp_path / "report"))
    assert code == 0, err
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"| Method | Avg. Success | {TASK} |" in text and "| tiny |" in text and "Table 1" in text
    assert "| success rate mean (%) |" in text and "| alignment Recall@1 (val) |" in text
    assert "| success rate mean, told the held-out paraphrases (%) |" in text

    code, _, err = cli("eval", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--failures")
    assert code == 2 and "needs --video N" in err
    shutil.rmtree(folder / "videos")
    code, out, err = cli("eval", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--video", "1", "--failures")
    assert code == 0, err
    with open(folder / "episodes.csv") as f:
        episodes = list(csv.DictReader(f))
    failed = [e for e in episodes if e["success"] == "False"]
    assert failed and all(e["cause"] in CAUSES and e["detail"] for e in failed), failed  # 2 key poses cannot reach
    assert all(e["cause"] == "" for e in episodes if e["success"] == "True")
    assert (folder / "failures.md").read_text() in out
    first = next(e for e in episodes if e["repeat"] == "0" and e["success"] == "False")
    assert [p.name for p in (folder / "videos").glob("*failure.mp4")] == [f"{TASK}-seed{first['seed']}-failure.mp4"]


def test_the_same_command_with_the_same_threads_trains_the_same_weights(cli, tmp_path):
    """What docs/metaworld.md promises: bit-identical runs on one machine type with the same thread count."""
    weights = []
    for name in ("a", "b"):
        code, _, err = cli("train", str(MIRROR_YAML), *tiny(tmp_path, name), "data.rollout_episodes=0",
                           "trainer.max_steps=4", "trainer.threads=1")
        assert code == 0, err
        weights.append(read_checkpoint(tmp_path / name / "checkpoints" / "last.ckpt")["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_an_episode_hears_its_instruction_its_twin_tasks_or_its_held_out_paraphrase():
    env = MetaWorldEnv(0, "test", size=32, max_keyframes=1)
    heard = []
    try:
        for told in ("instruction", "twin", "paraphrase"):
            env.run_episode("drawer-open-v3", 1, lambda inputs, text: heard.append(text) or np.zeros(9), told=told)
    finally:
        env.close()
    assert heard == ["open the drawer on the right", "close the drawer on the right",
                     "pull out the drawer on the right"]


def test_a_simulator_worker_that_dies_or_hangs_costs_one_episode(tmp_path):
    cfg = load_config(MIRROR_YAML, [*tiny(tmp_path, "unused"), "data.rollout_timeout=20"])
    spec = DataSpec(["reach the low goal on the left"], [TASK])
    runner = FaultyRollouts(cfg, spec)
    episodes = [(TASK, i) for i in range(5)]
    try:
        results = runner.run(Holder(ARP(cfg.execution, spec)), episodes)
    finally:
        runner.close()
    assert [(r.task, r.index) for r in results] == episodes
    assert results[CRASH].error == "crash" and "exited with code" in results[CRASH].detail
    assert results[HANG].error == "timeout" and "no result within 20 s" in results[HANG].detail
    played = [r for i, r in enumerate(results) if i not in (CRASH, HANG)]
    assert all(r.error is None and (r.success or r.length == 2) for r in played)


def test_bad_task_names_and_paths_are_one_line_errors_before_anything_is_written(cli, tmp_path):
    def fails(*overrides: str) -> str:
        code, _, err = cli("train", str(MIRROR_YAML), *tiny(tmp_path, "bad"), *overrides)
        assert code == 2 and err.count("\n") == 1, err
        return err

    err = fails("data.tasks=[reach-v9]")
    assert "data.tasks: unknown Meta-World task 'reach-v9' (did you mean 'reach-v3'?)" in err
    assert "data.rollout_tasks: unknown Meta-World task 'drawer-opn-v3'" in fails("data.rollout_tasks=[drawer-opn-v3]")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert f"data.cache: cannot create folder {blocker}" in fails(f"data.cache={blocker}")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "demos").exists()
