"""`mirror report`: intervals over seeds and paired comparisons against scipy on hand-made run folders."""

import csv
import json

import numpy as np
import pytest
import yaml
from scipy import stats

from mirror.analysis.stats import interval, paired

TASKS = ("push-v3", "reach-v3")


def make_run(root, name: str, seed: int, success: dict, recognised: dict, twin: dict | None = None):
    """A run folder as `mirror train` and `mirror eval` leave it: `success[(task, scene)]` over 2 repeats and
    `recognised[(task, clip)]` as 0/1."""
    run = root / f"{name}-seed{seed}"
    (run / "eval" / "last").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "run": {"name": run.name},
                                                     "align": {"weight": 0.5, "positives": "instruction", "tau": 0.1}}))
    with open(run / "eval" / "last" / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["repeat", "task", "index", "success", "seed"])
        w.writeheader()
        for (task, scene), values in success.items():
            for r, v in enumerate(values):
                w.writerow({"repeat": r, "task": task, "index": scene, "success": bool(v), "seed": scene})
    with open(run / "eval" / "last" / "recognition.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["clip", "task", "instruction", "span", "phrasing", "predicted", "correct"])
        w.writeheader()
        for (task, clip), v in recognised.items():
            w.writerow({"clip": clip, "task": task, "instruction": 0, "span": 1.0, "phrasing": "instruction",
                        "predicted": 0, "correct": v})
    rates = {t: 100 * np.mean([np.mean(v) for (task, _), v in success.items() if task == t]) for t in TASKS}
    metrics = {"success": {**{t: {"mean": rates[t], "std": 0.0} for t in TASKS},
                           "avg": {"mean": float(np.mean(list(rates.values()))), "std": 0.0}},
               "metrics": {"recognition/instruction@1": float(np.mean(list(recognised.values()))),
                           "val/align/recall1": 0.5 + 0.01 * seed}}
    (run / "eval" / "last" / "metrics.json").write_text(json.dumps(metrics))
    (run / "validation").mkdir()
    for step in (500, 1000):  # the rollouts during training, as ValidationRecord writes them
        rates = {f"rollout/success/{t}": step / 20 + seed for t in TASKS}
        (run / "validation" / f"step{step:07d}.json").write_text(json.dumps(
            {**rates, "rollout/success": float(np.mean(list(rates.values()))), "val/loss_ee": 1.0}))
    if twin:
        (run / "eval" / "last_twin").mkdir()
        (run / "eval" / "last_twin" / "metrics.json").write_text(json.dumps(
            {"success": {t: {"mean": v, "std": 0.0} for t, v in twin.items()}}))
    return run


@pytest.fixture
def grid(tmp_path):
    """Two arms x 3 seeds on the same 2 x 20 test scenes and 2 x 10 clips; arm A a little better."""
    rng = np.random.default_rng(0)
    runs = {"a": [], "b": []}
    for arm, bias in (("a", 0.15), ("b", 0.0)):
        for seed in range(3):
            success = {(t, s): (rng.random(2) < 0.5 + bias).tolist() for t in TASKS for s in range(20)}
            recognised = {(t, c): int(rng.random() < 0.4 + bias) for t in TASKS for c in range(10)}
            twin = {"push-v3": 10.0} if arm == "b" else None
            runs[arm].append(make_run(tmp_path, f"mw-{arm}", seed, success, recognised, twin))
    return runs


def reread(runs):
    """Per scene and per clip, each run's values, read back from the files independently of mirror."""
    scenes, clips = [], []
    for run in runs:
        with open(run / "eval" / "last" / "episodes.csv") as f:
            rows = list(csv.DictReader(f))
        per = {}
        for r in rows:
            per.setdefault((r["task"], int(r["seed"])), []).append(r["success"] == "True")
        scenes.append({k: np.mean(v) for k, v in per.items()})
        with open(run / "eval" / "last" / "recognition.csv") as f:
            clips.append({(r["task"], int(r["clip"])): float(r["correct"]) for r in csv.DictReader(f)})
    return scenes, clips


def test_intervals_use_the_sample_std_and_students_t():
    x = [71.0, 74.0, 80.0]
    got = interval(x)
    sd = np.std(x, ddof=1)
    half = stats.t.ppf(0.975, 2) * sd / np.sqrt(3)
    assert got.sd == pytest.approx(sd) and (got.lo, got.hi) == pytest.approx((np.mean(x) - half, np.mean(x) + half))
    assert np.isnan(interval([5.0]).sd) and interval([5.0]).show() == "5.0"
    same = paired({1: 1.0, 2: 0.0}, {1: 1.0, 2: 0.0})
    assert same.p == 1.0 and same.diff.mean == 0


def test_report_compares_two_arms_on_the_same_scenes_and_clips_as_scipy_does(cli, grid, tmp_path):
    out = tmp_path / "report"
    code, text, err = cli("report", *map(str, grid["a"] + grid["b"]), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 0, err
    report = (out / "report.md").read_text()
    scenes = {arm: reread(grid[arm])[0] for arm in grid}
    clips = {arm: reread(grid[arm])[1] for arm in grid}
    keys = sorted(scenes["a"][0])
    a = np.array([np.mean([s[k] for s in scenes["a"]]) for k in keys]) * 100
    b = np.array([np.mean([s[k] for s in scenes["b"]]) for k in keys]) * 100
    t = stats.ttest_rel(a, b)
    half = stats.t.ppf(0.975, len(keys) - 1) * np.std(a - b, ddof=1) / np.sqrt(len(keys))
    d = np.mean(a - b)
    row = (f"| success (%) | all | {a.mean():.1f} | {b.mean():.1f} | {d:+.1f} [{d - half:+.1f}, {d + half:+.1f}] | "
           f"{t.pvalue:.3g} | 40 |")
    assert row in report
    ckeys = sorted(clips["a"][0])
    ca = np.array([np.mean([c[k] for c in clips["a"]]) for k in ckeys]) * 100
    cb = np.array([np.mean([c[k] for c in clips["b"]]) for k in ckeys]) * 100
    assert f"| recognition top-1 (%) | all | {ca.mean():.1f} | {cb.mean():.1f} |" in report
    assert f"{stats.ttest_rel(ca, cb).pvalue:.3g} | 20 |" in report
    per_seed = [[np.mean([np.mean([s[k] for k in keys if k[0] == task]) * 100 for task in TASKS]) for s in scenes[arm]]
                for arm in ("a", "b")]
    assert f"p = {stats.ttest_rel(*per_seed).pvalue:.3g} (paired t over seeds)" in report
    mean_a = per_seed[0]
    sd = np.std(mean_a, ddof=1)
    half = stats.t.ppf(0.975, 2) * sd / np.sqrt(3)
    shown = f"{np.mean(mean_a):.1f} ± {sd:.1f} [{np.mean(mean_a) - half:.1f}, {np.mean(mean_a) + half:.1f}]"
    assert f"| success rate mean (%) | {shown} |" in report
    assert "| mw-b | push-v3 |" in report and (out / "mw_a_vs_mw_b_success.png").is_file()
    assert (out / "curves_mw-a.png").stat().st_size > 1000  # success against the step, mean over seeds, a band


def test_report_names_an_unknown_group(cli, grid, tmp_path):
    code, _, err = cli("report", *map(str, grid["a"]), "--compare", "mw-a", "mw-c", "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "no group 'mw-c' among the runs; groups: mw-a" in err
