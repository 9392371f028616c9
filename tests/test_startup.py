"""Heavy imports only where used: the `mirror` command, rollout workers, `mirror report` and the RLBench and
Meta-World demonstration commands import neither Lightning nor (where they need no tensors) torch."""

import subprocess
import sys

from tests.conftest import ROOT

LIGHT = {
    "mirror.cli": ("lightning", "torch"),
    "mirror.analysis.report": ("lightning", "torch"),
    "mirror.benchmarks.rlbench.preprocess": ("lightning", "torch"),
    "mirror.benchmarks.babyai.rollouts": ("lightning",),
    "mirror.benchmarks.rlbench.rollouts": ("lightning",),
    "mirror.rollouts.keyframe": ("lightning",),
    "mirror.benchmarks.metaworld.env": ("lightning", "torch"),
    "mirror.benchmarks.metaworld.demos": ("lightning", "torch"),
}


def test_commands_and_workers_import_no_heavy_package_they_do_not_use():
    # One module per interpreter, so that one module's imports do not hide another's.
    for module, heavy in LIGHT.items():
        code = f"import sys, {module}; print(sorted(p for p in {heavy!r} if p in sys.modules))"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "[]", f"{module} imports {done.stdout.strip()}"
