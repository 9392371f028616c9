"""Statistics for comparing runs: a mean with its sample standard deviation and 95% interval, and a paired
comparison of two arms on the same items (test scenes, clips), with a paired t-test."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


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
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def interval(values: Sequence[float]) -> Interval:
    x = np.asarray(values, dtype=float)
    n, mean = len(x), float(np.mean(x))
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), float("nan"), n)
    sd = float(np.std(x, ddof=1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, n - 1)) * sd / np.sqrt(n)
    return Interval(mean, sd, mean - half, mean + half, n)


@dataclass
class Paired:
    """Arm A against arm B on the items both have: means, the mean difference A - B with its 95% interval,
    and the two-sided p-value of the paired t-test (1 when every difference is 0, 0 when all are one
    non-zero value)."""

    n: int
    mean_a: float
    mean_b: float
    diff: Interval
    p: float


def paired(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> Paired:
    """Compare the values of the items present in both mappings (e.g. a test scene's success, averaged over
    the arm's seeds). Raises ValueError when they share fewer than 2 items."""
    common = sorted(set(a) & set(b), key=repr)
    if len(common) < 2:
        raise ValueError(f"only {len(common)} item(s) in common: the arms were not evaluated on the same scenes")
    x = np.array([a[k] for k in common], dtype=float)
    y = np.array([b[k] for k in common], dtype=float)
    d = x - y
    if np.all(d == d[0]):  # no spread: the t statistic is undefined
        p = 1.0 if d[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel(x, y).pvalue)
    return Paired(len(common), float(x.mean()), float(y.mean()), interval(d), p)
