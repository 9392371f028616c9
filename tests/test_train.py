"""Tiny `mirror train` runs of the toy U and E: outputs, W&B offline, resume, NaN stop, eval, DDP."""

import csv
import json
import os
import subprocess
import sys

import lightning as L
import torch
import yaml

from mirror.config import load_config
from mirror.training.checkpoint import read_checkpoint
from mirror.training.phases import PHASES
from mirror.training.run import train
from mirror.training.trainer import cpu_threads
from tests.conftest import ROOT, TOY


def test_train_writes_checkpoints_config_and_offline_wandb(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    code, out, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=e2e", "logger=wandb", "align.tau=0.2")
    assert code == 0, err
    assert [line for line in (out + err).splitlines() if line.startswith("wandb:")] == []  # W&B's chatter is off
    run = tmp_path / "e2e"
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["last.ckpt", "step0000004.ckpt", "step0000008.ckpt"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["align"]["tau"] == 0.2 and saved["logger"] == "wandb" and saved["run"]["name"] == "e2e"
    run_id = (run / "wandb_id").read_text().strip()
    offline = list((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert offline, "W&B should have written an offline run"
    assert len(metric_rows(run)) > 0 and (run / "plots" / "curves.png").stat().st_size > 10_000  # local curves too
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 8
    assert ckpt["hyper_parameters"]["config"]["align"]["tau"] == 0.2
    times = json.loads((run / "phases.json").read_text())[-1]
    assert list(times) == [*PHASES, "total"] and times["training"] > 0 and times["validation (with rollouts)"] > 0
    assert abs(sum(times[p] for p in PHASES) - times["total"]) < 0.01
    assert "wall time of this run:" in out


def metric_rows(run):
    """Rows of a run's CSV log (one file over all starts of the run)."""
    with open(run / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_are_logged_per_branch(tmp_path):
    cfg = load_config(TOY, [f"run.root={tmp_path}", "run.name=m"])
    train(cfg)
    rows = metric_rows(tmp_path / "m")
    au_steps = sorted({int(r["step"]) for r in rows if r.get("train/loss_au")})
    ee_steps = sorted({int(r["step"]) for r in rows if r.get("train/loss_ee")})
    assert ee_steps == list(range(8))
    assert au_steps == [0, 2, 4, 6]  # understanding.fraction 0.5, decided from global_step
    val = [r for r in rows if r.get("val/align/recall1")]
    assert len(val) == 2 and all(r["val/align/recall1_chance"] for r in val)
    assert any(r.get("lr/understanding/text") for r in rows)


class StopAt(L.Callback):
    """Stops training after `step` optimiser steps, like a job killed right after a checkpoint."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def final_state(run):
    return read_checkpoint(run / "checkpoints" / "step0000008.ckpt")


def test_resume_matches_uninterrupted_run(tmp_path):
    common = [f"run.root={tmp_path}", "execution.dropout=0.3", "trainer.val_every=3", "data.num_workers=0"]
    train(load_config(TOY, common + ["run.name=full"]))
    train(load_config(TOY, common + ["run.name=cut"]), callbacks=[StopAt(4)])
    assert not (tmp_path / "cut" / "checkpoints" / "step0000008.ckpt").exists()
    train(load_config(TOY, common + ["run.name=cut", "resume=auto"]))
    full, cut = final_state(tmp_path / "full"), final_state(tmp_path / "cut")
    assert full["global_step"] == cut["global_step"] == 8
    for name, value in full["state_dict"].items():
        assert torch.equal(value, cut["state_dict"][name]), name
    states = full["optimizer_states"][0]["state"], cut["optimizer_states"][0]["state"]
    for a, b in zip(states[0].values(), states[1].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_directory_is_not_overwritten_without_resume(cli, tmp_path):
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=once")[0] == 0
    before = (tmp_path / "once" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    code, _, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=once")
    assert code == 2 and "already holds checkpoints; add resume=auto" in err
    assert (tmp_path / "once" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before
    code, _, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=other", "resume=/no/such.ckpt")
    assert code == 2 and "checkpoint not found: /no/such.ckpt" in err


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(cli, tmp_path):
    code, _, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=nan", "execution.nan_after=5")
    assert code == 1
    assert "loss is nan at step 5" in err
    assert f"last good checkpoint: {tmp_path / 'nan' / 'checkpoints' / 'step0000004.ckpt'}" in err
    kept = read_checkpoint(tmp_path / "nan" / "checkpoints" / "step0000004.ckpt")
    assert kept["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values())
    assert not (tmp_path / "nan" / "checkpoints" / "step0000008.ckpt").exists()


def test_alignment_off_is_the_baseline_through_the_same_module(tmp_path):
    train(load_config(TOY, [f"run.root={tmp_path}", "run.name=base", "align.weight=0"]))
    state = final_state(tmp_path / "base")["state_dict"]
    assert not any(k.startswith("alignment.") for k in state)
    assert any(k.startswith("understanding.") for k in state) and any(k.startswith("execution.") for k in state)


def test_eval_reports_validation_metrics(cli, tmp_path):
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=ev")[0] == 0
    code, out, err = cli("eval", "--ckpt", str(tmp_path / "ev" / "checkpoints" / "last.ckpt"))
    assert code == 0, err
    assert "val/align/recall1" in out and "val/u/acc" in out
    assert (tmp_path / "ev" / "eval" / "last" / "metrics.json").is_file()
    code, _, err = cli("eval", "--ckpt", str(tmp_path / "missing.ckpt"))
    assert code == 1 and "checkpoint not found" in err


def test_eval_reuse_keeps_an_evaluation_of_the_same_step_and_request_only(cli, tmp_path):
    """launch/seeds.sh re-runs `mirror eval --reuse`: it evaluates again when the checkpoint moved on or the
    request changed, and never decides by file times."""
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=re", "trainer.max_steps=4")[0] == 0
    ckpt = str(tmp_path / "re" / "checkpoints" / "last.ckpt")
    metrics = tmp_path / "re" / "eval" / "last" / "metrics.json"
    assert cli("eval", "--ckpt", ckpt, "--reuse")[0] == 0
    first = json.loads(metrics.read_text())
    assert first["step"] == 4 and first["request"]["tasks"] == ["all"] and first["request"]["overrides"] == []
    os.utime(metrics, ns=(0, 0))  # older than the checkpoint: still the same step
    code, out, _ = cli("eval", "--ckpt", ckpt, "--reuse")
    assert code == 0 and "kept (--reuse)" in out and metrics.stat().st_mtime_ns == 0
    code, out, _ = cli("eval", "--ckpt", ckpt, "--reuse", "data.val_size=32")
    assert code == 0 and "kept" not in out and json.loads(metrics.read_text())["request"]["overrides"] == [
        "data.val_size=32"]
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=re", "trainer.max_steps=6", "resume=auto")[0] == 0
    os.utime(tmp_path / "re" / "checkpoints" / "last.ckpt", ns=(0, 0))  # a copy: the checkpoint looks older
    code, out, _ = cli("eval", "--ckpt", ckpt, "--reuse", "data.val_size=32")
    assert code == 0 and "kept" not in out and json.loads(metrics.read_text())["step"] == 6


def test_training_reduces_the_losses(tmp_path):
    cfg = load_config(TOY, [f"run.root={tmp_path}", "run.name=long", "trainer.max_steps=120",
                            "trainer.ckpt_every=120", "trainer.val_every=0", "understanding.fraction=1",
                            "execution.lr=5e-3", "understanding.lr=5e-3", "align.lr=5e-3"])
    train(cfg)
    rows = [r for r in metric_rows(tmp_path / "long") if r.get("train/loss")]
    first, last = rows[:10], rows[-10:]
    for key in ("train/loss_au", "train/loss_ee", "train/loss_align"):
        before = sum(float(r[key]) for r in first) / 10
        after = sum(float(r[key]) for r in last) / 10
        assert after < 0.7 * before, key


def test_two_process_ddp_run_on_cpu(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mirror", "train", TOY, f"run.root={tmp_path}", "run.name=ddp",
         "trainer.devices=2", "trainer.accelerator=cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 8
    assert ckpt["rng"]["cpu"].shape[0] == 2  # both ranks' generators saved


def test_zero_shot_eval_of_a_config(cli, tmp_path):
    code, out, err = cli("eval", TOY, f"run.root={tmp_path}", "run.name=zs")
    assert code == 0, err
    assert "val/u/acc" in out and (tmp_path / "zs" / "eval" / "zero_shot" / "metrics.json").is_file()


def test_last_step_is_checkpointed_when_not_a_multiple_of_ckpt_every(tmp_path):
    train(load_config(TOY, [f"run.root={tmp_path}", "run.name=odd", "trainer.max_steps=6", "trainer.val_every=0"]))
    folder = tmp_path / "odd" / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt", "step0000004.ckpt", "step0000006.ckpt"]
    assert read_checkpoint(folder / "last.ckpt")["global_step"] == 6


def test_cpu_training_threads_share_the_cores_among_training_processes(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    def threads_of(*overrides):
        return cpu_threads(load_config(TOY, ["trainer.accelerator=cpu", *overrides]))

    threads = {(d, w): threads_of(f"trainer.devices={d}", f"data.num_workers={w}") for d in (1, 2) for w in (0, 1, 3)}
    assert threads == {(1, 0): 8, (1, 1): 8, (1, 3): 8, (2, 0): 4, (2, 1): 4, (2, 3): 4}
    assert threads_of("trainer.devices=16", "data.num_workers=2") == 1
    assert threads_of("trainer.threads=3") == 3
