"""launch/seeds.sh: every (seed, experiment) run with its own name, the extra overrides, then one report."""

import os
import re
import shutil
import subprocess

from tests.conftest import ROOT


def stand_in(tmp_path, before: str = "", after: str = ""):
    """A stand-in `mirror` that appends its arguments to `calls`, between the shell code `before` and `after`."""
    stub = tmp_path / "mirror"
    stub.write_text(f'#!/usr/bin/env bash\n{before}\necho "$*" >> {tmp_path / "calls"}\n{after}\n')
    stub.chmod(0o755)
    return stub


def test_seeds_script_trains_and_evaluates_each_experiment_per_seed_then_compares_them(tmp_path):
    calls = tmp_path / "calls"
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path)), "ROOT": "out", "SEEDS": "0 1", "TWIN": "arp",
           "PARAPHRASE": "mirror arp"}
    subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "metaworld", "mirror", "arp", "--", "trainer.max_steps=5"],
                   env=env, check=True, cwd=tmp_path)
    lines = calls.read_text().splitlines()
    steps = []
    for s in (0, 1):
        for exp in ("mirror", "arp"):
            name = f"metaworld-{exp}-seed{s}"
            steps += [f"train configs/metaworld/{exp}.yaml seed={s} run.root=out run.name={name} resume=auto "
                      "trainer.max_steps=5", f"eval --ckpt out/{name}/checkpoints/last.ckpt --reuse"]
            if exp == "arp":
                steps.append(f"eval --ckpt out/{name}/checkpoints/last.ckpt --reuse --twin --tasks all")
            steps.append(f"eval --ckpt out/{name}/checkpoints/last.ckpt --reuse --paraphrase")
    runs = " ".join(f"out/metaworld-{exp}-seed{s}" for s in (0, 1) for exp in ("mirror", "arp"))
    assert lines == [*steps, f"report {runs} --compare metaworld-mirror metaworld-arp --out out/metaworld-seeds"]


def test_seeds_script_stops_at_the_first_failed_run(tmp_path):
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path, after="exit 3")), "ROOT": "out"}
    done = subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "babyai", "mirror", "baseline"], env=env,
                          cwd=tmp_path, capture_output=True)
    assert done.returncode == 3 and len((tmp_path / "calls").read_text().splitlines()) == 1


def test_seeds_script_runs_jobs_side_by_side_and_reports_after_all_into_out(tmp_path):
    calls = tmp_path / "calls"
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path, "sleep 0.2")), "ROOT": "out", "SEEDS": "0 1 2", "JOBS": "2",
           "OUT": "out/grid"}
    subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "babyai", "mirror", "baseline"], env=env, check=True,
                   cwd=tmp_path)
    lines = calls.read_text().splitlines()
    assert len(lines) == 3 * 2 * 2 + 1 and lines[-1].startswith("report ") and lines[-1].endswith("--out out/grid")
    for s in (0, 1, 2):
        for exp in ("mirror", "baseline"):  # each run's own steps keep their order
            mine = [line.split()[0] for line in lines[:-1] if re.search(rf"babyai-{exp}-seed{s}\b", line)]
            assert mine == ["train", "eval"], (s, exp, lines)


def test_seeds_script_makes_openmp_threads_sleep_only_when_jobs_share_the_cores(tmp_path):
    """Spinning OpenMP threads are fastest for a run alone and 4x slower beside another busy job."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policies = {}
    for jobs in ("1", "2"):
        stub = stand_in(tmp_path, f'echo "${{OMP_WAIT_POLICY:-unset}}" >> {tmp_path / f"policy{jobs}"}')
        subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "babyai", "mirror"],
                       env={**env, "MIRROR": str(stub), "ROOT": "out", "SEEDS": "0", "JOBS": jobs}, check=True,
                       cwd=tmp_path)
        policies[jobs] = set((tmp_path / f"policy{jobs}").read_text().split())
    assert policies == {"1": {"unset"}, "2": {"PASSIVE"}}


def test_seeds_script_runs_the_experiments_of_one_seed_side_by_side(tmp_path):
    """JOBS counts runs, not seeds: each train waits (at most 60 s) until both of seed 0's runs have started."""
    barrier = ('if [[ $1 == train ]]; then touch "started.$5"; for _ in $(seq 600); do '
               '(( $(ls started.* | wc -l) == 2 )) && break; sleep 0.1; done; '
               '(( $(ls started.* | wc -l) == 2 )) || exit 4; fi')
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path, barrier)), "ROOT": "out", "SEEDS": "0", "JOBS": "2"}
    done = subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "metaworld", "mirror", "arp"], env=env, cwd=tmp_path,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "calls").read_text().splitlines()[-1].startswith("report ")


def test_seeds_script_pretrains_once_then_names_a_folders_runs_and_report_after_it(tmp_path):
    calls = tmp_path / "calls"
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path)), "ROOT": "out", "SEEDS": "0", "PRETRAIN": "pretrained/u"}
    subprocess.run(["bash", str(ROOT / "launch/seeds.sh"), "metaworld", "pretrained/mirror", "pretrained/arp", "--",
                    "trainer.threads=1"], env=env, check=True, cwd=tmp_path)
    lines = calls.read_text().splitlines()
    assert lines[:2] == ["train configs/metaworld/pretrained/u.yaml run.root=out run.name=metaworld-pretrained-u "
                         "resume=auto trainer.threads=1",
                         "eval --ckpt out/metaworld-pretrained-u/checkpoints/last.ckpt --reuse"]
    assert lines[2] == ("train configs/metaworld/pretrained/mirror.yaml seed=0 run.root=out "
                        "run.name=metaworld-pretrained-mirror-seed0 resume=auto trainer.threads=1")
    assert lines[-1] == ("report out/metaworld-pretrained-mirror-seed0 out/metaworld-pretrained-arp-seed0 --compare "
                         "metaworld-pretrained-mirror metaworld-pretrained-arp --out out/metaworld-pretrained-seeds")
    assert len(lines) == 7


def test_seeds_script_keeps_each_evaluated_run_in_keep_and_continues_from_it_on_a_fresh_machine(tmp_path):
    """KEEP outlives the machine: runs are copied there without checkpoints or videos (the pre-training run with its
    last checkpoint), a kept run is not run again, the pre-trained start comes back from KEEP, the report reads KEEP."""
    fake = ('for a in "$@"; do case $a in run.name=*) run="out/${a#run.name=}";; '
            '*/last.ckpt) run=${a%/checkpoints/*};; esac; done; mkdir -p "$run/checkpoints" "$run/eval/last/videos"; '
            '[[ $1 == train && ! -f $run/checkpoints/last.ckpt ]] && echo "$run" > "$run/checkpoints/last.ckpt"; '
            '[[ $1 == eval ]] && echo "{}" > "$run/eval/last/metrics.json" && touch "$run/eval/last/videos/a.mp4"; '
            'echo "$1" >> "$run/log"')
    env = {**os.environ, "MIRROR": str(stand_in(tmp_path, fake)), "ROOT": "out", "SEEDS": "0", "KEEP": "kept",
           "PRETRAIN": "pretrained/u", "PARAPHRASE": "pretrained/arp"}
    command = ["bash", str(ROOT / "launch/seeds.sh"), "metaworld", "pretrained/mirror", "pretrained/arp"]
    subprocess.run(command, env=env, check=True, cwd=tmp_path)
    kept = tmp_path / "kept"
    files = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert files == [f"{run}/{f}" for run in ("metaworld-pretrained-arp-seed0", "metaworld-pretrained-mirror-seed0")
                     for f in ("eval/last/metrics.json", "log")] + [
        "metaworld-pretrained-u/checkpoints/last.ckpt", "metaworld-pretrained-u/eval/last/metrics.json",
        "metaworld-pretrained-u/log"]
    assert (kept / "metaworld-pretrained-arp-seed0/log").read_text().split() == ["train", "eval", "eval"]
    shutil.rmtree(tmp_path / "out")  # a fresh machine: only KEEP is left
    (tmp_path / "calls").unlink()
    subprocess.run(command, env={**env, "SEEDS": "0 1"}, check=True, cwd=tmp_path)
    lines = (tmp_path / "calls").read_text().splitlines()
    assert [" ".join(line.split()[:3]) for line in lines[:2]] == [
        "train configs/metaworld/pretrained/u.yaml run.root=out",
        "eval --ckpt out/metaworld-pretrained-u/checkpoints/last.ckpt"]
    assert (tmp_path / "out/metaworld-pretrained-u/checkpoints/last.ckpt").read_text() == "out/metaworld-pretrained-u\n"
    assert not any("seed0" in line for line in lines[:-1]) and sum("seed1" in line for line in lines[:-1]) == 5
    runs = " ".join(f"kept/metaworld-pretrained-{exp}-seed{s}" for s in (0, 1) for exp in ("mirror", "arp"))
    assert lines[-1] == (f"report {runs} --compare metaworld-pretrained-mirror metaworld-pretrained-arp "
                         "--out kept/metaworld-pretrained-seeds")
    assert (kept / "metaworld-pretrained-mirror-seed1/eval/last/metrics.json").is_file()
