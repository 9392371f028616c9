"""The paper's experiment in miniature: configs/rlbench/mirror.yaml with tiny ViCLIP and a small ARP, on the
real RLBench sample (or synthetic episodes), rollouts against the fake simulator, and `mirror report`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats
from torch import nn

from mirror.analysis.report import seeds, table3
from mirror.analysis.runs import RunRecord
from mirror.benchmarks.rlbench.synthetic import write_episode
from mirror.config import load_config, to_dict
from mirror.training.checkpoint import read_checkpoint
from mirror.training.optim import build_optimizer, build_param_groups, lr_factor
from mirror.training.run import train
from tests.conftest import ROOT, SHARED_DATA
from tests.test_arp import SMALL
from tests.test_rlbench_eval import FAKESIM, fakesim, write_test_set  # noqa: F401  (fakesim: a fixture)
from tests.test_train import metric_rows

MIRROR_YAML = ROOT / "configs/rlbench/mirror.yaml"


@pytest.fixture
def data_root(tmp_path):
    real = SHARED_DATA / "rlbench"
    if real.is_dir():
        return real
    for i in range(3):
        write_episode(tmp_path / "synthetic", "open_drawer", i, frames=30, variation=i, seed=i)
    return tmp_path / "synthetic"


def tiny(root, tmp_path, name, devices=1):
    """The tiny run's overrides; its rollouts restore scenes from the test set in tmp_path/test."""
    return ["understanding.size=tiny", "understanding.checkpoint=null", "understanding.fraction=0.5", *SMALL,
            f"data.root={root}", "data.val_root=null", f"data.test_root={tmp_path / 'test'}",
            f"data.cache={tmp_path / 'cache'}",
            "data.tasks=[open_drawer]", "data.episodes=2", "data.val_episodes=1", "data.batch_size=2",
            "data.val_batch_size=2", "data.num_workers=0", "data.cache_workers=1", "data.rollout_episodes=2",
            "data.rollout_max_steps=2", "data.rollout_workers=1", f"trainer.devices={devices}",
            "trainer.accelerator=cpu",
            "trainer.precision=32-true", "trainer.max_steps=2", "trainer.val_every=2", "trainer.ckpt_every=2",
            "trainer.sanity_val_steps=0", "optim.warmup_steps=1", "logger=csv", f"run.root={tmp_path}",
            f"run.name={name}", "trainer.progress_bar=false"]


def run_mirror(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKESIM), str(ROOT)]),
           "MIRROR_FAKESIM_LOG": str(tmp_path / "episodes.log")}
    return subprocess.run([sys.executable, "-m", "mirror", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.usefixtures("fakesim")
def test_tiny_joint_run_rolls_out_checkpoints_and_reports(data_root, tmp_path):
    write_test_set(tmp_path / "test", ["open_drawer"], 2)
    proc = run_mirror(["train", str(MIRROR_YAML), *tiny(data_root, tmp_path, "tiny")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "tiny"
    assert (run / "checkpoints" / "step0000002.ckpt").is_file()
    record = json.loads((run / "validation" / "step0000002.json").read_text())
    for key in ("val/u/recognition/open_drawer", "val/align/recall1", "val/e/trans_err_cm", "rollout/success"):
        assert key in record, key
    assert len((tmp_path / "episodes.log").read_text().splitlines()) == 2 and record["rollout/errors"] == 0
    proc = run_mirror(["report", str(run), "--out", str(tmp_path / "report")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Table 1" in text and "| tiny |" in text and "Table 2" in text
    assert "| Method | Avg. Success | open_drawer |" in text
    assert (tmp_path / "report" / "success.png").is_file() and (tmp_path / "report" / "recognition.png").is_file()


@pytest.mark.usefixtures("fakesim")
def test_tiny_joint_run_under_ddp_logs_identical_totals(data_root, tmp_path):
    write_test_set(tmp_path / "test", ["open_drawer"], 2)
    proc = run_mirror(["train", str(MIRROR_YAML), *tiny(data_root, tmp_path, "ddp", devices=2)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / "ddp" / "rollouts" / f"step0000002.rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and ranks[0]["rollout/episodes"] == 2 and ranks[0]["rollout/errors"] == 0


def test_table_3_layout():
    def record(positives, tau, au, ee):
        return RunRecord(ROOT, f"{positives}-{tau}", {"align": {"weight": 0.5, "positives": positives, "tau": tau}},
                         metrics={"val/u/recognition/t": au}, success={"avg": (ee, 1.0)})

    records = [record(p, t, 0.5 + i / 10, 80.0 + i) for i, (p, t) in
               enumerate([("episode", 0.02), ("episode", 0.1), ("instruction", 0.1), ("task", 0.2)])]
    lines = table3(records).splitlines()
    assert lines[0] == "| positives | tau 0.02 (AU / EE) | tau 0.1 (AU / EE) | tau 0.2 (AU / EE) |"
    assert lines[2] == "| episode | 50.0 / 80.0 | 60.0 / 81.0 |  |"
    assert lines[3] == "| instruction |  | 70.0 / 82.0 |  |" and lines[4] == "| task |  |  | 80.0 / 83.0 |"


def test_table_3_cell_is_the_mean_over_seeds():
    config = {"align": {"weight": 0.5, "positives": "task", "tau": 0.1}}
    records = [RunRecord(ROOT, f"task-seed{i}", config, metrics={"val/u/recognition/t": au}, success={"avg": (ee, 0.0)})
               for i, (au, ee) in enumerate([(0.5, 40.0), (0.7, 50.0), (0.6, 75.0)])]
    records.append(RunRecord(ROOT, "episode-seed0", {"align": {**config["align"], "positives": "episode"}},
                             metrics={"val/u/recognition/t": 0.2}))
    lines = table3(records).splitlines()
    assert lines[2:] == ["| episode | 20.0 / n/a |", "| task | 60.0 / 55.0 (n=3) |"]


def test_seed_groups_mean_sample_std_and_interval():
    runs = {"mirror": [(90.0, 0.30), (84.0, 0.36), (99.0, 0.33)], "base": [(80.0, 0.31), (86.0, 0.35)]}
    records = [RunRecord(ROOT, f"babyai-{g}-seed{i}", {}, summary={"success (%)": s, "recall": r})
               for g, values in runs.items() for i, (s, r) in enumerate(values)]
    text, stats = seeds(records)
    for g, values in runs.items():
        arr = np.array(values)
        for column, metric in enumerate(("success (%)", "recall")):
            got = stats[f"babyai-{g}"][metric]
            half = scipy_stats.t.ppf(0.975, len(arr) - 1) * arr[:, column].std(ddof=1) / np.sqrt(len(arr))
            assert np.allclose((got.mean, got.sd, got.hi), (arr[:, column].mean(), arr[:, column].std(ddof=1),
                                                            arr[:, column].mean() + half))
    lines = text.splitlines()
    assert lines[0] == "| metric | babyai-mirror (n=3) | babyai-base (n=2) |"
    assert lines[2] == "| success (%) | 91.0 ± 7.5 [72.2, 109.8] | 83.0 ± 4.2 [44.9, 121.1] |"


def test_seed_groups_show_a_percentage_near_zero_as_a_percentage():
    records = [RunRecord(ROOT, f"mw-arp-seed{i}", {}, summary={"success handle-pull (%)": s, "recall": 0.5})
               for i, s in enumerate((0.0, 4.0, 0.0))]
    records += [RunRecord(ROOT, f"mw-mirror-seed{i}", {}, summary={"success handle-pull (%)": 0.0}) for i in (0, 1)]
    lines = seeds(records)[0].splitlines()
    assert lines[2].startswith("| success handle-pull (%) | 1.3 ± 2.3 [")
    assert lines[2].endswith("| 0.0 ± 0.0 [0.0, 0.0] |")
    assert lines[3].startswith("| recall | 0.500 ± 0.000")


def test_alignment_off_leaves_arps_trajectory_unchanged(data_root, tmp_path):
    """With align.weight=0, E in the joint run (U training beside it) follows ARP trained alone step by step."""
    common = [*tiny(data_root, tmp_path, "unused"), "trainer.max_steps=3", "trainer.val_every=100",
              "trainer.ckpt_every=3", "trainer.log_every=1", "execution.dropout=0.2"]
    train(load_config(MIRROR_YAML, [*common, "align.weight=0", "run.name=joint"]))
    alone = [o for o in common if not o.startswith("understanding.")]
    train(load_config(ROOT / "configs/rlbench/arp.yaml", [*alone, "run.name=arp"]))
    runs = {name: tmp_path / name for name in ("joint", "arp")}
    losses = {n: [float(r["train/loss_ee"]) for r in metric_rows(run) if r.get("train/loss_ee")]
              for n, run in runs.items()}
    assert len(losses["joint"]) == 3 and any(float(r["train/loss_au"]) > 0 for r in metric_rows(runs["joint"])
                                             if r.get("train/loss_au"))
    assert np.allclose(losses["joint"], losses["arp"], rtol=1e-6, atol=0)
    states = {n: read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"] for n, run in runs.items()}
    execution = [k for k in states["arp"] if k.startswith("execution.")]
    assert execution and all(torch.equal(states["joint"][k], states["arp"][k]) for k in execution)
    assert any(k.startswith("understanding.") for k in states["joint"])


def test_alignment_off_leaves_viclips_trajectory_unchanged(data_root, tmp_path):
    """With align.weight=0, U in the joint run (E training beside it, with LAMB) follows ViCLIP trained alone."""
    common = [*tiny(data_root, tmp_path, "unused"), "trainer.max_steps=3", "trainer.val_every=100",
              "trainer.ckpt_every=3", "trainer.log_every=1", "understanding.mask_ratio=0.5"]
    train(load_config(MIRROR_YAML, [*common, "align.weight=0", "run.name=joint"]))
    alone = [o for o in common if not o.startswith("execution.")]
    train(load_config(ROOT / "configs/rlbench/viclip.yaml", [*alone, "understanding.fraction=0.5", "run.name=viclip"]))
    runs = {name: tmp_path / name for name in ("joint", "viclip")}
    losses = {n: [float(r["train/loss_au"]) for r in metric_rows(run) if r.get("train/loss_au")]
              for n, run in runs.items()}
    assert len(losses["joint"]) == 2  # steps 0 and 2 of 3 at fraction 0.5
    assert np.allclose(losses["joint"], losses["viclip"], rtol=1e-6, atol=0)
    states = {n: read_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"] for n, run in runs.items()}
    understanding = [k for k in states["viclip"] if k.startswith("understanding.")]
    assert understanding and all(torch.equal(states["joint"][k], states["viclip"][k]) for k in understanding)
    assert any(k.startswith("execution.") for k in states["joint"])


def test_baselines_use_exactly_their_branchs_settings():
    joint = load_config(MIRROR_YAML)
    viclip = load_config(ROOT / "configs/rlbench/viclip.yaml")
    arp = load_config(ROOT / "configs/rlbench/arp.yaml")
    assert to_dict(arp)["execution"] == to_dict(joint)["execution"]
    alone, beside = to_dict(viclip)["understanding"], to_dict(joint)["understanding"]
    assert alone.pop("fraction") == 1.0 and beside.pop("fraction") == 0.2  # alone, it trains on every step
    assert alone == beside
    assert viclip.optim == joint.optim == arp.optim  # one schedule
    assert (joint.understanding.optimizer.name, joint.execution.optimizer.name) == ("adamw", "lamb")


def test_branch_optimizers_resume_exactly(tmp_path):
    """AdamW and LAMB stepped as one under one schedule: a run stopped, saved and resumed from the composite's
    state dict continues exactly as one that never stopped."""
    cfg = load_config(MIRROR_YAML, ["optim.warmup_steps=2", "trainer.max_steps=6"])

    def setup():
        torch.manual_seed(0)
        parts = {"understanding": nn.Linear(4, 3), "execution": nn.Linear(4, 2)}
        align = nn.Linear(3, 2)
        optimizer = build_optimizer(build_param_groups(parts, align, cfg, global_batch=2), cfg)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg))
        return [*parts.values(), align], optimizer, schedule

    def step(models, optimizer, schedule, i):
        gen = torch.Generator().manual_seed(i)
        loss = sum(m(torch.randn(5, m.in_features, generator=gen)).pow(2).mean() for m in models)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()

    models, optimizer, schedule = setup()
    assert [type(o).__name__ for o in optimizer.optimizers] == ["AdamW", "LAMB", "AdamW"]
    for i in range(6):
        step(models, optimizer, schedule, i)
    straight = [p.detach().clone() for m in models for p in m.parameters()]
    models, optimizer, schedule = setup()
    for i in range(3):
        step(models, optimizer, schedule, i)
    torch.save({"models": [m.state_dict() for m in models], "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict()}, tmp_path / "cut.pt")
    saved = torch.load(tmp_path / "cut.pt", weights_only=True)
    models, optimizer, schedule = setup()
    for m, state in zip(models, saved["models"], strict=True):
        m.load_state_dict(state)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    for i in range(3, 6):
        step(models, optimizer, schedule, i)
    resumed = [p.detach() for m in models for p in m.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))
    assert optimizer.optimizers[1].param_groups[0] is optimizer.param_groups[2]  # LAMB sees the schedule's lr
