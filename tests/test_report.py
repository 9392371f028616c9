"""`mirror report`: intervals over seeds and comparisons over runs against scipy on hand-made run folders."""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from mirror.analysis.stats import interval

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
    assert np.isnan(interval([5.0]).sd) and interval([5.0]).show() == "5.0 (n=1)"


def holm2(p1: float, p2: float) -> list[float]:
    """Holm's adjustment of two p-values, written out."""
    low, high = sorted([p1, p2])
    adjusted = {low: min(1.0, 2 * low), high: min(1.0, max(2 * low, high))}
    return [adjusted[p1], adjusted[p2]]


def row_of(report: str, measure: str, task: str) -> list[str]:
    line = next(ln for ln in report.splitlines() if ln.startswith(f"| {measure} | {task} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_report_compares_two_arms_over_their_runs_as_scipy_does(cli, grid, tmp_path):
    out = tmp_path / "report"
    code, text, err = cli("report", *map(str, grid["a"] + grid["b"]), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 0, err
    report = (out / "report.md").read_text()
    assert "paired by seed (seeds 0, 1, 2 in both groups" in report
    for measure, which in (("success (%)", 0), ("recognition top-1 (%)", 1)):
        per_run = {arm: [{t: 100 * np.mean([v for (task, _), v in run.items() if task == t]) for t in TASKS}
                         for run in reread(grid[arm])[which]] for arm in grid}
        mean = {arm: [np.mean(list(r.values())) for r in per_run[arm]] for arm in grid}
        t = stats.ttest_rel(mean["a"], mean["b"])
        d = np.subtract(mean["a"], mean["b"])
        half = stats.t.ppf(0.975, 2) * np.std(d, ddof=1) / np.sqrt(3)
        assert row_of(report, measure, "mean over tasks") == [
            measure, "mean over tasks", f"{np.mean(mean['a']):.1f}", f"{np.mean(mean['b']):.1f}",
            f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}]", f"{t.pvalue:.3g}", "", "3 / 3"]
        raw = [stats.ttest_rel([r[task] for r in per_run["a"]], [r[task] for r in per_run["b"]]).pvalue
               for task in TASKS]
        for task, p, adjusted in zip(TASKS, raw, holm2(*raw), strict=True):
            assert row_of(report, measure, task)[5:7] == [f"{p:.3g}", f"{adjusted:.3g}"]
        sd = np.std(d, ddof=1)
        note = next(ln for ln in report.splitlines() if ln.startswith(f"{measure}, mean over tasks: with 3 runs"))
        smallest = float(note.split("a difference of ")[1].split(" points")[0])
        crit = stats.t.ppf(0.975, 2)
        assert f"(sd {sd:.1f} points)" in note
        assert stats.nct.sf(crit, 2, smallest / (sd / np.sqrt(3))) == pytest.approx(0.8, abs=0.01)
    per_seed = [[np.mean([np.mean([s[k] for k in s if k[0] == task]) * 100 for task in TASKS]) for s in
                 reread(grid[arm])[0]] for arm in ("a", "b")]
    mean_a = per_seed[0]
    sd = np.std(mean_a, ddof=1)
    half = stats.t.ppf(0.975, 2) * sd / np.sqrt(3)
    shown = f"{np.mean(mean_a):.1f} ± {sd:.1f} [{np.mean(mean_a) - half:.1f}, {np.mean(mean_a) + half:.1f}]"
    assert f"| success rate mean (%) | {shown} |" in report
    assert "| mw-b | push-v3 |" in report and (out / "mw_a_vs_mw_b_success.png").is_file()
    assert (out / "curves_mw-a.png").stat().st_size > 1000  # success against the step, mean over seeds, a band


def test_secondary_measures_are_compared_over_runs_and_adjusted_over_themselves(cli, grid, tmp_path):
    """Success told the paraphrases or the twins' instructions and recognition of part of each clip, each run's
    value paired by seed as scipy does, Holm over those measures; the primary recognition is not repeated."""
    rng = np.random.default_rng(1)
    told = {arm: rng.uniform(30, 70, 3) + (8 if arm == "a" else 0) for arm in grid}
    twin = {arm: rng.uniform(0, 20, 3) for arm in grid}
    early = {arm: rng.uniform(0.3, 0.6, 3) for arm in grid}
    for arm, runs in grid.items():
        for i, run in enumerate(runs):
            path = run / "eval" / "last" / "metrics.json"
            data = json.loads(path.read_text())
            data["metrics"]["recognition/instruction@0.25"] = early[arm][i]
            path.write_text(json.dumps(data))
            for kind, values in (("paraphrase", told), ("twin", twin)):
                (run / "eval" / f"last_{kind}").mkdir(exist_ok=True)
                (run / "eval" / f"last_{kind}" / "metrics.json").write_text(json.dumps(
                    {"request": {"tasks": ["all"], "told": kind, "twin": kind == "twin"},
                     "success": {"avg": {"mean": values[arm][i], "std": 0.0}}}))
    out = tmp_path / "report"
    code, _, err = cli("report", *map(str, grid["a"] + grid["b"]), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 0, err
    report = (out / "report.md").read_text()
    assert "adjusted over these 3 measures" in report
    names = ("success rate mean, told the held-out paraphrases (%)",
             "success rate mean, told the twin task's instruction (%)",
             "recognition top-1, instructions, first 25% of the clip (test)")
    raw = [stats.ttest_rel(v["a"], v["b"]).pvalue for v in (told, twin, early)]
    order = np.argsort(raw)
    adjusted = np.empty(3)
    adjusted[order] = np.maximum.accumulate([min(1.0, (3 - i) * raw[j]) for i, j in enumerate(order)])
    for name, values, p, p_holm in zip(names, (told, twin, early), raw, adjusted, strict=True):
        line = next(ln for ln in report.splitlines() if ln.startswith(f"| {name} | ") and ln.count("|") == 9)
        cells = [c.strip() for c in line.strip("|").split("|")]
        digits = 1 if "(%)" in name else 3
        d = values["a"] - values["b"]
        half = stats.t.ppf(0.975, 2) * np.std(d, ddof=1) / np.sqrt(3)
        assert cells[3] == f"{d.mean():+.{digits}f} [{d.mean() - half:+.{digits}f}, {d.mean() + half:+.{digits}f}]"
        assert cells[4:6] == [f"{p:.3g}", f"{p_holm:.3g}"] and cells[7] == "3 / 3"
        smallest = float(cells[6])
        shift = smallest / (np.std(d, ddof=1) / np.sqrt(3))
        assert stats.nct.sf(stats.t.ppf(0.975, 2), 2, shift) == pytest.approx(0.8, abs=0.01)
    assert not any(ln.startswith("| recognition top-1, instructions, first 100%") and ln.count("|") == 9
                   for ln in report.splitlines())


def scenes_at(rate: float) -> list[list[bool]]:
    """25 scenes, the first `rate` of them succeeding in both repeats."""
    return [[s < round(25 * rate)] * 2 for s in range(25)]


def test_a_task_that_only_one_seed_carries_is_not_a_finding_and_a_consistent_one_is(cli, tmp_path):
    """Arm A's seeds solve push on 100%, 0% and 100% of the scenes, arm B's on about 40%: over scenes that looked
    like p = 5e-11; over runs it is noise. On reach A gains about 70 points in every seed: a finding."""
    rates = {"a": {"push-v3": (1.0, 0.0, 1.0), "reach-v3": (0.96, 1.0, 0.92)},
             "b": {"push-v3": (0.4, 0.36, 0.44), "reach-v3": (0.28, 0.24, 0.32)}}
    runs = []
    for arm, by_task in rates.items():
        for seed in range(3):
            success = {(t, s): v for t in TASKS for s, v in enumerate(scenes_at(by_task[t][seed]))}
            runs.append(make_run(tmp_path, f"mw-{arm}", seed, success, {(t, 0): 1 for t in TASKS}))
    out = tmp_path / "report"
    code, _, err = cli("report", *map(str, runs), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 0, err
    report = (out / "report.md").read_text()
    push, reach = row_of(report, "success (%)", "push-v3"), row_of(report, "success (%)", "reach-v3")
    assert float(push[5]) > 0.05 and float(push[6]) > 0.05
    assert reach[4].startswith("+68.0") and float(reach[5]) < 0.01 and float(reach[6]) < 0.05


def test_lost_episodes_are_left_out_of_the_rates_and_counted(cli, grid, tmp_path):
    episodes = grid["a"][0] / "eval" / "last" / "episodes.csv"
    rows = list(csv.DictReader(open(episodes)))
    rows.append({"repeat": 0, "task": "push-v3", "index": 99, "success": False, "seed": -1})
    rows.append({"repeat": 0, "task": "reach-v3", "index": 98, "success": False, "seed": -1})
    with open(episodes, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "report"
    code, _, err = cli("report", *map(str, grid["a"] + grid["b"]), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 0, err
    report = (out / "report.md").read_text()
    assert "Test episodes lost to errors, left out of the rates: mw-a 2, mw-b 0." in report
    scenes = reread(grid["a"][:1])[0][0]  # read back, the lost episodes under scene -1
    push = 100 * np.mean([v for (t, s), v in scenes.items() if t == "push-v3" and s >= 0])
    assert push != 100 * np.mean([v for (t, s), v in scenes.items() if t == "push-v3"])
    from mirror.analysis.comparison import run_values
    from mirror.analysis.runs import read_run

    assert run_values(read_run(grid["a"][0]), "success (%)")["push-v3"] == pytest.approx(push)


def test_table2_shows_the_sample_spread_and_one_evaluation_without_one(tmp_path):
    from mirror.analysis.tables import markdown, summarize
    from mirror.rollouts.episode import EpisodeResult

    def repeat(wins: int) -> list:
        return [EpisodeResult("push-v3", i, i < wins, 0.0, 1, seed=i) for i in range(4)] + \
               [EpisodeResult.lost("push-v3", 9, "crash", "")]

    three = summarize([repeat(1), repeat(2), repeat(4)], ["push-v3"])
    assert three["push-v3"] == pytest.approx((np.mean([25, 50, 100]), np.std([25, 50, 100], ddof=1)))
    assert markdown({"arp": three}, ["push-v3"]).endswith("| arp | 58.3 ± 38.2 | 58.3 ± 38.2 |")
    one = summarize([repeat(3)], ["push-v3"])
    assert markdown({"arp": one}, ["push-v3"]).endswith("| arp | 75.0 | 75.0 |")


def test_report_names_an_unknown_group(cli, grid, tmp_path):
    code, _, err = cli("report", *map(str, grid["a"]), "--compare", "mw-a", "mw-c", "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "no group 'mw-c' among the runs; groups: mw-a" in err


def test_report_refuses_a_comparison_of_one_run_each_before_writing_anything(cli, grid, tmp_path):
    out = tmp_path / "r"
    code, _, err = cli("report", str(grid["a"][0]), str(grid["b"][0]), "--compare", "mw-a", "mw-b", "--out", str(out))
    assert code == 1 and err.count("\n") == 1 and "each group needs at least 2 runs" in err
    assert not out.exists()


def write_eval(run, name: str, step: int, episodes: int, repeats: int, avg: float, tasks=("all",), twin=False):
    """An evaluation folder as `mirror eval` writes it: what was asked for, the step, the success figures."""
    folder = run / "eval" / name
    folder.mkdir(parents=True, exist_ok=True)
    success = {t: {"mean": avg, "std": None if repeats == 1 else 1.0} for t in (*TASKS, "avg")}
    (folder / "metrics.json").write_text(json.dumps({
        "step": step, "episodes": episodes, "repeats": repeats, "success": success, "metrics": {},
        "request": {"tasks": list(tasks), "episodes": episodes, "repeats": repeats, "twin": twin, "overrides": []}}))


def test_report_takes_the_full_evaluation_of_the_latest_step_whatever_the_file_times(cli, tmp_path):
    run = make_run(tmp_path / "a", "mw-a", 0, {(t, s): [1, 0] for t in TASKS for s in range(4)}, {(t, 0): 1 for t in
                                                                                                    TASKS})
    write_eval(run, "last", 1000, 20, 3, 70.0)
    (run / "eval" / "last" / "episodes.csv").unlink()
    write_eval(run, "step0000500", 500, 50, 3, 40.0)
    write_eval(run, "smoke", 1000, 5, 1, 60.0)  # a smoke test of the same step, written last
    write_eval(run, "sub", 1000, 50, 3, 90.0, tasks=("push-v3",))
    for age, name in enumerate(["last", "step0000500", "sub", "smoke"]):
        os.utime(run / "eval" / name / "metrics.json", ns=(age, age))

    def table2(folder, *extra):
        code, _, err = cli("report", str(folder), "--out", str(tmp_path / "r"), *extra)
        assert code == 0, err
        return (tmp_path / "r" / "report.md").read_text()

    text = table2(run)
    assert "| mw-a-seed0 | 70.0 ± 1.0 | 70.0 ± 1.0 | 70.0 ± 1.0 | mw-a-seed0/eval/last (step 1000, 20 episodes x 3 " \
           "repeat(s) per task) |" in text
    skipped = text.split("## Evaluations skipped")[1]
    assert all(f"eval/{name} (" in skipped for name in ("smoke", "step0000500", "sub")) and "a subset" in skipped
    copy = tmp_path / "b" / run.name
    shutil.copytree(run, copy)
    for age, metrics in enumerate(sorted(copy.glob("eval/*/metrics.json"), reverse=True)):
        os.utime(metrics, ns=(10**18 + age, 10**18 + age))
    assert table2(copy) == text
    assert "| mw-a-seed0 | 60.0 | 60.0 | 60.0 | mw-a-seed0/eval/smoke (step 1000, 5 episodes x 1 repeat(s) per " \
           "task) |" in table2(run, "--eval", "smoke")  # one repeat: no spread shown
    shutil.rmtree(run / "eval")
    os.utime(run / "validation" / "step0000500.json", ns=(10**18, 10**18))
    assert "mw-a-seed0/validation/step0001000.json (validation rollouts" in table2(run)


def test_the_tsne_colours_tell_36_missions_apart():
    from mirror.plots import palette

    colours = palette(36)
    assert len(colours) == 36 and len(set(colours)) == 36  # tab20 alone repeats after 20


def test_runs_without_seeds_are_compared_unpaired_never_by_position():
    from mirror.analysis.comparison import compare
    from mirror.analysis.runs import RunRecord

    def runs(group: str, rates: list[float], seeded: bool) -> list:
        return [RunRecord(Path(f"{group}{i}"), f"{group}-run{i}", {"seed": i} if seeded else {},
                          success={"push-v3": (v, np.nan), "reach-v3": (v, np.nan)}) for i, v in enumerate(rates)]

    a, b = [41.0, 47.0, 52.0], [40.0, 45.0, 48.0]
    unseeded = compare(runs("a", a, False), runs("b", b, False))[0].rows[0].test
    assert not unseeded.paired and unseeded.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    seeded = compare(runs("a", a, True), runs("b", b, True))[0].rows[0].test
    assert seeded.paired and seeded.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
