import os
from pathlib import Path

import pytest

from mirror.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOY = str(ROOT / "tests" / "configs" / "toy.yaml")
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_SILENT", "true")


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
