"""Statistics for comparing groups of training runs, with the run (seed) as the unit: a mean with its sample
standard deviation and 95% interval; two groups compared over runs (paired by seed, else Welch's t); Holm's
adjustment over tasks; and the power of such a comparison.

Scenes or clips scored by one run are not independent (they share the run's training), so no test here takes
them as its unit: each run contributes one number per task and one on average.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.8
MEAN = "mean over tasks"  # the headline row of a comparison


@dataclass
class Interval:
    """Mean of n values, their sample standard deviation (ddof 1) and the t-based 95% interval of the mean;
    with one value the spread and interval are NaN."""

    mean: float
    sd: float
    lo: float
    hi: float
    n: int

    def show(self, digits: int = 1) -> str:
        if self.n < 2:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def spread(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1), zero where the values differ only by rounding: 100 * 14/25 is
    56.00000000000001, and two runs that agree must not give a t statistic of 1e15."""
    sd = float(np.std(values, ddof=1))
    return 0.0 if sd <= 1e-9 * max(1.0, float(np.abs(values).max())) else sd


def interval(values: Sequence[float]) -> Interval:
    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(np.mean(x))
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), float("nan"), n)
    sd = spread(x)
    half = float(stats.t.ppf((1 + LEVEL) / 2, n - 1)) * sd / np.sqrt(n)
    return Interval(mean, sd, mean - half, mean + half, n)


@dataclass
class RunTest:
    """Group A against group B over their runs: the groups' means, the difference A - B with its 95% interval,
    the two-sided p-value (NaN when the runs show no spread), and how: `paired` by seed (the same seeds in both
    groups) or Welch's t. `sd` is the spread of one run-level difference (paired: of the per-seed differences;
    Welch: sqrt(sd_A^2 + sd_B^2)), what the power of a design is computed from."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: Interval  # mean, lo, hi of A - B (its sd and n: see `sd` and `n_a`, `n_b`)
    p: float
    paired: bool
    sd: float
    df: float


def _t_test(diff: float, se: float, df: float) -> tuple[float, float, float]:
    """Two-sided p-value and 95% interval of a difference with standard error `se` and `df` degrees of freedom.
    Without spread (every run-level difference the same) the t statistic is undefined: p is NaN, whatever the
    difference, since a few runs can agree by chance."""
    if se == 0:
        return float("nan"), diff, diff
    half = float(special.stdtrit(df, (1 + LEVEL) / 2)) * se
    return float(2 * special.stdtr(df, -abs(diff) / se)), diff - half, diff + half


def over_runs(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> RunTest:
    """Compare two groups of runs keyed by seed. With the same seeds on both sides (the same data and scenes
    per seed) the t-test is paired by seed; otherwise Welch's t over the runs. ValueError with fewer than 2."""
    x, y = np.array(list(a.values()), dtype=float), np.array(list(b.values()), dtype=float)
    if set(a) == set(b) and len(a) >= 2:
        d = np.array([a[k] - b[k] for k in a], dtype=float)
        n, sd = len(d), spread(d)
        df, se = n - 1.0, sd / np.sqrt(n)
        paired_ = True
    elif len(x) >= 2 and len(y) >= 2:
        sx, sy = spread(x), spread(y)
        va, vb = sx**2 / len(x), sy**2 / len(y)
        se = float(np.sqrt(va + vb))
        df = float((va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))) if se > 0 else len(x) + len(y) - 2.0
        sd = float(np.sqrt(sx**2 + sy**2))
        paired_ = False
    else:
        raise ValueError(f"{len(x)} and {len(y)} run(s): a comparison over runs needs at least 2 in each group")
    diff = float(x.mean() - y.mean())
    p, lo, hi = _t_test(diff, se, df)
    return RunTest(len(x), len(y), float(x.mean()), float(y.mean()), Interval(diff, sd, lo, hi, len(x)), p,
                   paired_, sd, df)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment: family-wise error at most alpha whatever the dependence between tests. A NaN
    p-value (an undefined test) counts in the family and stays NaN."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


@dataclass
class TaskTest:
    task: str  # a task, or MEAN: each run's mean over the tasks
    test: RunTest
    p_holm: float | None  # adjusted over the tasks; None for the mean over tasks


def compare_groups(a: Mapping[Hashable, Mapping[str, float]], b: Mapping[Hashable, Mapping[str, float]]
                   ) -> list[TaskTest]:
    """Per task and for each run's mean over tasks, A against B over runs (`a[seed][task]`: one run's value
    for the task). Per-task p-values are adjusted over the tasks both groups have (Holm)."""
    tasks = sorted(set.intersection(*(set(r) for r in [*a.values(), *b.values()])))
    if not tasks:
        return []
    rows = [TaskTest(MEAN, over_runs({s: float(np.mean([r[t] for t in tasks])) for s, r in a.items()},
                                     {s: float(np.mean([r[t] for t in tasks])) for s, r in b.items()}), None)]
    per_task = [over_runs({s: r[t] for s, r in a.items()}, {s: r[t] for s, r in b.items()}) for t in tasks]
    adjusted = holm([t.p for t in per_task])
    rows += [TaskTest(task, test, p) for task, test, p in zip(tasks, per_task, adjusted, strict=True)]
    return rows


def power(delta: float, sd: float, n: int, paired: bool = True) -> float:
    """Probability that a two-sided t-test at ALPHA finds a true difference `delta` with `n` runs per group,
    when one run-level difference has spread `sd` (see `RunTest.sd`; Welch's degrees of freedom taken as for
    equal spreads)."""
    if n < 2:
        return float("nan")
    df = n - 1 if paired else 2 * (n - 1)
    shift = delta / (sd / np.sqrt(n))
    crit = special.stdtrit(df, 1 - ALPHA / 2)
    wrong_side = special.nctdtr(df, abs(shift), -crit)  # NaN where it underflows (few runs, a large shift)
    return float(1 - special.nctdtr(df, abs(shift), crit) + np.nan_to_num(wrong_side))


def detectable(sd: float, n: int, paired: bool = True) -> float:
    """The smallest difference found with POWER by n runs per group at spread `sd` (NaN when it cannot be said)."""
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    high = sd / np.sqrt(n)
    while power(high, sd, n, paired) < POWER:
        high *= 2
    return float(optimize.brentq(lambda d: power(d, sd, n, paired) - POWER, 0.0, high))


def runs_needed(delta: float, sd: float, paired: bool = True, most: int = 1000) -> int | None:
    """How many runs per group find a difference `delta` with POWER at spread `sd` (None: more than `most`)."""
    if not np.isfinite(sd) or sd <= 0:
        return None
    for n in range(2, most + 1):
        if power(delta, sd, n, paired) >= POWER:
            return n
    return None
