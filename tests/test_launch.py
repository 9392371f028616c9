"""launch/seeds.sh: every (seed, experiment) run with its own name, the extra overrides, then one report."""

import os
import subprocess

from tests.conftest import ROOT


def test_seeds_script_trains_each_experiment_per_seed_then_reports_them_together(tmp_path):
    calls = tmp_path / "calls"
    stub = tmp_path / "mirror"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    stub.chmod(0o755)
    env = {**os.environ, "MIRROR": str(stub), "ROOT": "out", "SEEDS": "0 1"}
    subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "metaworld", "mirror", "arp", "--", "trainer.max_steps=5"],
                   env=env, check=True, cwd=tmp_path)
    lines = calls.read_text().splitlines()
    train = [f"train configs/metaworld/{exp}.yaml seed={s} run.root=out run.name=metaworld-{exp}-seed{s} resume=auto "
             "trainer.max_steps=5" for s in (0, 1) for exp in ("mirror", "arp")]
    runs = " ".join(f"out/metaworld-{exp}-seed{s}" for s in (0, 1) for exp in ("mirror", "arp"))
    assert lines == [*train, f"report {runs} --out out/metaworld-seeds"]


def test_seeds_script_stops_at_the_first_failed_run(tmp_path):
    stub = tmp_path / "mirror"
    stub.write_text(f'#!/usr/bin/env bash\necho "$*" >> {tmp_path / "calls"}\nexit 3\n')
    stub.chmod(0o755)
    env = {**os.environ, "MIRROR": str(stub), "ROOT": "out"}
    done = subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "babyai", "mirror", "baseline"], env=env,
                          cwd=tmp_path, capture_output=True)
    assert done.returncode == 3 and len((tmp_path / "calls").read_text().splitlines()) == 1
