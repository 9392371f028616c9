import os

# Before torch loads, here and in the suite's subprocesses: the suite runs two workers side by side on 2 cores, and
# OpenMP threads that spin while they wait would take the core the other worker needs (docs/metaworld.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from mirror.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY = str(ROOT / "tests" / "configs" / "toy.yaml")
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_SILENT", "true")
# One thread in the suite's own processes: with two, every parallel op waits for a thread that another process
# (the other worker, the suite's subprocesses, a job beside it) has taken off the core.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Tests run from the repository root, where `tests.toy:...` names import."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def cli(capsys):
    """Run `mirror ...` in this process; returns (exit code, stdout, stderr)."""

    def run(*argv: str):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
