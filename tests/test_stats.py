"""The comparison statistics: against scipy and published power figures, and calibrated on simulated nulls with
the training run as the unit (scenes shared by the runs, a random shift of each task's success per run)."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logit

from mirror.analysis.stats import MEAN, compare_groups, detectable, holm, over_runs, power, runs_needed

TASKS = [f"task{i:02d}" for i in range(16)]
SCENES = 25
EXPERIMENTS = 1000  # simulated experiments per setting: a 5% rate is estimated within about +-1.4 points


def experiments(rng, n: int, seeds: int, run_sd: float, effect: float = 0.0):
    """`n` simulated two-group experiments: each task has a base success rate in [0.2, 0.8] and 25 scenes of
    their own difficulty (the same scenes for every run); each run (seed) shifts each task's rate by a normal
    amount of sd `run_sd`; group A's rate is raised by `effect` in every task and run. Yields, per group, each
    run's success (%) per task, as `mirror report` computes it from the scenes."""
    base = rng.uniform(0.2, 0.8, (n, 1, 1, len(TASKS)))
    difficulty = rng.normal(0.0, 1.0, (n, 1, 1, len(TASKS), SCENES))
    shift = np.array([effect, 0.0])[None, :, None, None]
    rate = np.clip(base + shift + rng.normal(0.0, run_sd, (n, 2, seeds, len(TASKS))), 0.01, 0.99)
    wins = rng.random((n, 2, seeds, len(TASKS), SCENES)) < expit(logit(rate)[..., None] + difficulty)
    for experiment in 100 * wins.mean(-1):
        yield [{s: dict(zip(TASKS, experiment[arm, s], strict=True)) for s in range(seeds)} for arm in range(2)]


def detected(rows, effect: bool = False) -> bool:
    return rows[0].test.p < 0.05 and (not effect or rows[0].test.diff.mean > 0)


@pytest.mark.parametrize("seeds", [3, 5])
def test_no_difference_is_found_at_the_nominal_rate_whatever_the_spread_between_runs(seeds):
    rng = np.random.default_rng(seeds)
    for run_sd in (0.0, 0.15, 0.25):
        headline = per_task = family = 0
        for a, b in experiments(rng, EXPERIMENTS, seeds, run_sd):
            rows = compare_groups(a, b)
            assert rows[0].task == MEAN and [r.task for r in rows[1:]] == TASKS
            headline += detected(rows)
            per_task += sum(r.test.p < 0.05 for r in rows[1:])
            family += any(r.p_holm < 0.05 for r in rows[1:])
        rates = headline / EXPERIMENTS, per_task / (EXPERIMENTS * len(TASKS)), family / EXPERIMENTS
        print(f"{seeds} seeds, run sd {run_sd:.2f}: false positives mean {rates[0]:.3f}, per task {rates[1]:.3f}, "
              f"any task after Holm {rates[2]:.3f}")
        assert 0.02 <= rates[0] <= 0.08 and 0.02 <= rates[1] <= 0.08, (run_sd, rates)
        assert rates[2] <= 0.08, (run_sd, rates)


def test_a_difference_in_every_task_and_run_is_found_at_5_seeds():
    rng = np.random.default_rng(7)
    found = {}
    for effect in (0.05, 0.10, 0.20):
        hits = sum(detected(compare_groups(a, b), effect=True) for a, b in experiments(rng, 400, 5, 0.25, effect))
        found[effect] = hits / 400
    print("power at 5 seeds, run sd 0.25: " + ", ".join(f"+{100 * e:.0f} points {p:.2f}" for e, p in found.items()))
    assert found[0.20] >= 0.8
    assert found[0.05] < found[0.10] < found[0.20]


def test_over_runs_is_scipys_paired_t_by_seed_and_welch_otherwise():
    a, b = {0: 41.5, 1: 46.5, 2: 46.25}, {0: 40.5, 1: 45.5, 2: 48.0}
    got = over_runs(a, b)
    d = np.array([a[s] - b[s] for s in a])
    half = stats.t.ppf(0.975, 2) * np.std(d, ddof=1) / np.sqrt(3)
    assert got.paired and got.p == pytest.approx(stats.ttest_rel(list(a.values()), list(b.values())).pvalue)
    assert (got.diff.lo, got.diff.hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert got.sd == pytest.approx(np.std(d, ddof=1))
    shuffled = over_runs(a, dict(zip([0, 2, 1], b.values(), strict=True)))  # pairs by seed, not by position
    assert shuffled.p == pytest.approx(stats.ttest_rel([41.5, 46.5, 46.25], [40.5, 48.0, 45.5]).pvalue)
    other = over_runs(a, {3: 40.5, 4: 45.5, 5: 48.0, 6: 39.0})
    welch = stats.ttest_ind(list(a.values()), [40.5, 45.5, 48.0, 39.0], equal_var=False)
    assert not other.paired and other.p == pytest.approx(welch.pvalue)
    assert other.df == pytest.approx(welch.df)
    assert np.isnan(over_runs({0: 70.0, 1: 70.0}, {0: 0.0, 1: 0.0}).p)  # no spread: no test
    # two seeds that agree (-12 points each), the rates read from 25 clips: 100 * 14/25 = 56.00000000000001
    rate = {k: 100 * float(np.mean([1.0] * k + [0.0] * (25 - k))) for k in (14, 15, 17, 18)}
    agree = over_runs({0: rate[15], 1: rate[14]}, {0: rate[18], 1: rate[17]})
    assert rate[14] != 56.0 and np.isnan(agree.p) and agree.sd == 0.0 and agree.diff.mean == pytest.approx(-12.0)
    assert np.isnan(over_runs({0: rate[14], 1: 56.0}, {2: 10.0, 3: 10.0}).p)  # Welch: neither group varies
    with pytest.raises(ValueError, match="at least 2"):
        over_runs({0: 1.0}, {0: 2.0})


def test_holm_adjusts_as_its_step_down_rule_says():
    # m = 4: sorted 0.01 x 4, 0.02 x 3, 0.03 x 2 (held at 0.06 by the step before), 0.5 x 1
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    assert holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])


def test_power_matches_the_published_paired_t_figure_and_inverts():
    # paired t, n = 10, effect size 1 (difference = sd), two-sided alpha 0.05: power 0.8031 (Cohen; G*Power)
    assert power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=5e-4)
    assert runs_needed(1.0, 1.0) == 10 and runs_needed(0.5, 1.0) == 34  # G*Power: 34 pairs at d = 0.5
    smallest = detectable(1.0, 10)
    assert 0.98 < smallest < 1.0 and power(smallest, 1.0, 10) == pytest.approx(0.8, abs=1e-6)
    assert np.isnan(detectable(0.0, 10)) and runs_needed(2.0, 0.0) is None
