"""Training progress: plain lines in a log file (steps, losses, steps/s, ETA, validations), the rich bar counting
steps out of max_steps on a terminal."""

import os
import re
import subprocess
import sys
from types import SimpleNamespace

from mirror.config import load_config
from mirror.training import progress
from mirror.training.progress import LogLines, StepBar, build_progress_bar
from tests.conftest import ROOT, TOY

STEP_LINE = re.compile(r"step (\d+)/8 \| loss \S+ loss_au \S+ loss_ee \S+ loss_align \S+ \| (\S+) steps/s \| "
                       r"elapsed \d+:\d\d:\d\d \| ETA (\d+:\d\d:\d\d|\?)")


def test_a_run_logged_to_a_file_shows_steps_losses_rate_eta_and_validations(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, "-m", "mirror", "train", TOY, "trainer.progress_bar=true",
                               f"run.root={tmp_path}"], cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = log.read_text().splitlines()
    steps = [int(m.group(1)) for m in map(STEP_LINE.fullmatch, lines) if m]
    assert steps == list(range(1, 9)), lines  # toy.yaml: log_every 1
    assert "training: step 0 of 8, a line every 1 steps" in lines
    validations = [ln for ln in lines if ln.startswith("validation at step")]
    assert [ln.split()[3] for ln in validations] == ["4", "8"]  # val_every 4
    assert all("val/align/recall1 " in ln and "val/loss_ee " in ln for ln in validations)
    assert not any(re.search(r"\| lr[-/]", ln) for ln in validations)  # learning rates are for the loggers
    assert lines.index(validations[0]) == lines.index(next(ln for ln in lines if ln.startswith("step 4/8"))) + 1
    assert any(re.fullmatch(r"training: reached step 8 in \d+:\d\d:\d\d", ln) for ln in lines)
    assert lines[-1].startswith("run finished")
    assert not any("Epoch" in ln or "it/s" in ln for ln in lines)  # no rich bar frame


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_steps_per_second_and_eta_count_training_time_only(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    trainer = SimpleNamespace(global_step=0, max_steps=100, sanity_checking=False, progress_bar_metrics={"loss": 2.5},
                              callback_metrics={"loss": 2.5, "val/acc": 0.75, "lr-AdamW": 0.1}, loggers=[])
    lines = LogLines(every=10)
    lines._trainer = trainer
    lines.on_train_start(trainer, None)
    for step in range(1, 21):
        clock.now += 0.5  # 2 steps/s
        trainer.global_step = step
        lines.on_train_batch_end(trainer, None, None, None, step - 1)
        if step == 10:
            lines.on_validation_start(trainer, None)
            clock.now += 30.0
            lines.on_validation_end(trainer, None)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "step 10/100 | loss 2.5 | 2 steps/s | elapsed 0:00:05 | ETA 0:00:45"
    assert out[2] == "validation at step 10 (30.0 s) | val/acc 0.75"
    # 10 steps in 5 s of training: the 30 s of validation count in the elapsed time only.
    assert out[3] == "step 20/100 | loss 2.5 | 2 steps/s | elapsed 0:00:40 | ETA 0:00:40"
    assert len(out) == 4


def test_a_terminal_gets_the_rich_bar_counting_steps_out_of_max_steps(monkeypatch):
    cfg = load_config(TOY, ["trainer.progress_bar=true", "trainer.max_steps=600", "trainer.log_every=25"])
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(isatty=lambda: True))
    bar = build_progress_bar(cfg)
    assert isinstance(bar, StepBar)
    bar._trainer = SimpleNamespace(max_steps=600)
    assert bar.total_train_batches == 600 and bar._get_train_description(0).strip() == "Step"
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(isatty=lambda: False))
    plain = build_progress_bar(cfg)
    assert isinstance(plain, LogLines) and plain.every == 25
    assert build_progress_bar(load_config(TOY, [])) is None  # toy.yaml: progress_bar false


def test_a_validation_with_rollouts_of_many_tasks_reads_in_two_short_lines(capsys):
    tasks = [f"task-{i:02d}-v3" for i in range(16)]
    metrics = {"val/loss": 1.25, "rollout/success": 43.75, "rollout/episodes": 32.0, "rollout/errors": 0.0,
               "rollout/errors_by_kind/timeout": 0.0}
    for i, t in enumerate(tasks):
        metrics.update({f"rollout/success/{t}": 50.0 * (i % 3), f"rollout/return/{t}": 0.5, f"rollout/length/{t}": 7.0,
                        f"rollout/errors/{t}": 0.0, f"val/u/recognition/{t}": 0.5})
    trainer = SimpleNamespace(global_step=600, sanity_checking=False, progress_bar_metrics={}, callback_metrics=metrics,
                              datamodule=SimpleNamespace(spec=SimpleNamespace(tasks=tasks)))
    lines = LogLines(every=10)
    lines.on_validation_start(trainer, None)
    lines.on_validation_end(trainer, None)
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("| rollout/episodes 32 | rollout/errors 0 | rollout/success 43.75 | val/loss 1.25")
    assert second == "  rollout success per task (%): " + ", ".join(f"{t} {50 * (i % 3)}" for i, t in enumerate(tasks))
    assert len(first) < 200 and len(second) < 400
