"""Faults and bad input: killed and signalled runs resume exactly, nothing written is lost, and every user
error is one line with exit code 2 (configuration) or 1 (the rest)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

import mirror
from mirror.config import load_config
from mirror.errors import MirrorError
from mirror.training.checkpoint import checkpoint_step, read_checkpoint
from mirror.training.run import train
from tests.conftest import ROOT, TOY
from tests.test_train import StopAt, metric_rows

STEPS = ["trainer.max_steps=24", "trainer.ckpt_every=4", "trainer.val_every=6", "execution.dropout=0.3"]


def start(tmp_path, name, *extra):
    """A real `mirror train` process of the toy config, slowed to ~0.2 s per step so it can be stopped midway."""
    argv = [sys.executable, "-m", "mirror", "train", TOY, f"run.root={tmp_path}", f"run.name={name}", *STEPS,
            "data.step_delay=0.2", *extra]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc):
    """Until `path` exists (checkpoints are renamed into place whole); the process must still be running."""
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)


def finish(proc):
    out, err = proc.communicate(timeout=600)
    return proc.returncode, err


def reference(tmp_path):
    train(load_config(TOY, [f"run.root={tmp_path}", "run.name=reference", *STEPS]))
    return read_checkpoint(tmp_path / "reference" / "checkpoints" / "last.ckpt")


def assert_same_weights(a, b):
    assert a["global_step"] == b["global_step"]
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name


def train_steps(run):
    return [int(r["step"]) for r in metric_rows(run) if r.get("train/loss")]


def test_sigkill_then_resume_gives_the_uninterrupted_weights_and_logs_each_step_once(tmp_path):
    run = tmp_path / "killed"
    proc = start(tmp_path, "killed")
    wait_for(run / "checkpoints" / "step0000008.ckpt", proc)
    proc.kill()
    proc.wait()
    code, err = finish(start(tmp_path, "killed", "resume=auto", "data.step_delay=0"))
    assert code == 0, err[-3000:]
    assert_same_weights(read_checkpoint(run / "checkpoints" / "last.ckpt"), reference(tmp_path))
    assert train_steps(run) == list(range(24))


def test_sigterm_and_sigint_save_the_current_step_and_exit_nonzero(tmp_path):
    run = tmp_path / "stopped"
    for signum, first in ((signal.SIGTERM, 4), (signal.SIGINT, 12)):
        proc = start(tmp_path, "stopped", "resume=auto")
        wait_for(run / "checkpoints" / f"step{first:07d}.ckpt", proc)
        proc.send_signal(signum)
        code, err = finish(proc)
        assert code == 128 + signum, err[-3000:]
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"mirror train: error: stopped by {signum.name} at step ") and "resume=auto" in line
        step = int(line.split(" at step ")[1].split(";")[0])
        assert first <= step < 24
        assert f"checkpoint: {run / 'checkpoints' / f'step{step:07d}.ckpt'}" in line
        assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == step
    code, err = finish(start(tmp_path, "stopped", "resume=auto", "data.step_delay=0"))
    assert code == 0, err[-3000:]
    assert_same_weights(read_checkpoint(run / "checkpoints" / "last.ckpt"), reference(tmp_path))
    assert train_steps(run) == list(range(24))


def test_a_truncated_latest_checkpoint_is_skipped_by_resume_auto(tmp_path):
    common = [f"run.root={tmp_path}", *STEPS]
    train(load_config(TOY, [*common, "run.name=cut"]), callbacks=[StopAt(12)])
    folder = tmp_path / "cut" / "checkpoints"
    newest = folder / "last.ckpt"
    newest.write_bytes(newest.read_bytes()[:1000])
    (folder / "step0000012.ckpt").unlink()
    os.utime(newest)
    with pytest.warns(UserWarning, match=f"skipping {newest}: a truncated checkpoint"):
        train(load_config(TOY, [*common, "run.name=cut", "resume=auto"]))
    assert_same_weights(read_checkpoint(folder / "step0000024.ckpt"), reference(tmp_path))


def test_a_failed_resume_leaves_the_run_directory_untouched(cli, tmp_path):
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=r", "trainer.max_steps=4")[0] == 0
    run = tmp_path / "r"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=r", "resume=auto", "execution.width=48")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "weights do not fit the config" in lines[0] and "execution." in lines[0] and "[32" in lines[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert yaml.safe_load((run / "config.yaml").read_text())["execution"]["width"] == 32


def test_unreadable_checkpoints_are_one_line_errors_naming_the_file(cli, tmp_path):
    assert cli("train", TOY, f"run.root={tmp_path}", "run.name=t", "trainer.max_steps=4")[0] == 0
    good = tmp_path / "t" / "checkpoints" / "last.ckpt"
    bad = {"half.ckpt": (good.read_bytes()[: good.stat().st_size // 2], "a truncated checkpoint"),
           "empty.ckpt": (b"", "an empty file"),
           "config.yaml": ((tmp_path / "t" / "config.yaml").read_bytes(), "a text file, not a checkpoint"),
           "noise.ckpt": (np.random.default_rng(0).bytes(4096), "not a PyTorch checkpoint")}
    for name, (data, _) in bad.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"state_dict": {}, "module": torch.nn.Linear(2, 2)}, tmp_path / "foreign.ckpt")
    bad["foreign.ckpt"] = (None, "holds objects that a safe load refuses to build")
    for name, (_, why) in bad.items():
        path = tmp_path / name
        resume = ("train", TOY, f"run.root={tmp_path}", "run.name=u", f"resume={path}")
        for argv in (resume, ("eval", "--ckpt", str(path))):
            code, _, err = cli(*argv)
            lines = err.strip().splitlines()
            assert code == 1 and len(lines) == 1, (name, err)
            assert lines[0].startswith(f"mirror {argv[0]}: error: {path}: {why}"), (name, lines[0])
            assert "weights_only" not in lines[0]
        with pytest.raises(MirrorError, match=f"{path}: {why}"):
            mirror.load(path)
    code, _, err = cli("eval", "--ckpt", str(good), "understanding.width=8")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "weights do not fit the config" in err


@pytest.mark.parametrize("override, message", [
    ("trainer.devices=0", "bad value for 'trainer.devices': must be > 0, or -1 for all"),
    ("trainer.devices=-2", "bad value for 'trainer.devices': must be > 0, or -1 for all"),
    ("data.batch_size=300", "data.batch_size=300 x 1 process(es) is more than the 256 training items"),
])
def test_bad_values_are_one_line_config_errors(cli, tmp_path, override, message):
    code, _, err = cli("train", TOY, f"run.root={tmp_path}", "run.name=v", override)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_data_root_that_cannot_be_a_folder_is_one_line(cli, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for root in (blocker, blocker / "below"):
        code, _, err = cli("train", "configs/babyai/mirror.yaml", f"data.root={root}", f"run.root={tmp_path}")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"mirror train: error: data.root: cannot create "
                                                                     f"folder {root} ("), err
        assert not (tmp_path / "babyai-mirror").exists()
    code, _, err = cli("demos", "babyai", "--root", str(blocker), "--episodes", "1")
    assert code == 2 and err.startswith(f"mirror demos: error: --root: cannot create folder {blocker}")


def test_resuming_past_trainer_max_steps_is_one_line_and_rerunning_a_finished_run_is_a_no_op(cli, tmp_path, caplog):
    common = ["train", TOY, f"run.root={tmp_path}", "run.name=s", "resume=auto"]
    assert cli(*common, "trainer.max_steps=4")[0] == 0
    run = tmp_path / "s"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, err = cli(*common, "trainer.max_steps=2")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"mirror train: error: trainer.max_steps=2 is below step 4 of the checkpoint to resume "
                               f"({run / 'checkpoints'}") and lines[0].endswith("raise trainer.max_steps to continue "
                                                                               "training it"), lines[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    code, _, err = cli(*common, "trainer.max_steps=4")  # launch/seeds.sh re-runs finished runs' commands
    assert code == 0, err
    assert "complete at step 4 (trainer.max_steps), nothing to train" in caplog.text
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # not a file touched


def test_a_copied_run_resumes_from_its_latest_step_whatever_the_file_times(tmp_path):
    """A copy (cp -r, rsync without times) can write the checkpoints in any order: resume=auto goes by the step each
    holds. Here step 4 is written last and last.ckpt first; the copy still resumes at step 24, so nothing moves."""
    common = [*STEPS, "resume=auto"]
    train(load_config(TOY, [f"run.root={tmp_path}", "run.name=orig", *common]))
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "orig", copy)
    folder = copy / "checkpoints"
    for age, name in enumerate(["last.ckpt", "step0000024.ckpt", "step0000020.ckpt", "step0000004.ckpt"]):
        os.utime(folder / name, ns=(10**18 + age, 10**18 + age))
    before = {p: p.read_bytes() for p in folder.iterdir()}
    train(load_config(TOY, [f"run.root={tmp_path}", "run.name=copy", *common]))
    assert {p: p.read_bytes() for p in folder.iterdir()} == before
    assert train_steps(copy) == list(range(24))
    from mirror.training.run import latest_checkpoint

    assert checkpoint_step(latest_checkpoint(copy)) == 24
