"""Two groups of runs compared with the training run as the unit: each run's success on the test scenes and
recognition of the test clips, per task and averaged over tasks (`stats.compare_groups`), with the power of
the design; then the secondary measures (success told other instructions, recognition of part of each clip or
of the paraphrases); the Markdown section and the difference charts of `mirror report --compare`."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from mirror.analysis.runs import Item, RunRecord, clip_measure, recognition, test_measures
from mirror.analysis.stats import (
    ALPHA,
    POWER,
    RunTest,
    TaskTest,
    compare_groups,
    detectable,
    holm,
    over_runs,
    runs_needed,
)
from mirror.analysis.tables import table
from mirror.errors import MirrorError
from mirror.plots import difference_chart


def task_means(items: dict[Item, float]) -> dict[str, float]:
    """Per task, the mean (%) of a run's items (test scenes or clips)."""
    values: dict[str, list[float]] = defaultdict(list)
    for (task, _), v in items.items():
        values[task].append(v)
    return {task: 100 * float(np.mean(v)) for task, v in values.items()}


def run_values(record: RunRecord, measure: str) -> dict[str, float]:
    """One run's value per task for a measure: from its test scenes or clips, else from its table."""
    if measure == "success (%)":
        return task_means(record.scenes) if record.scenes else {t: m for t, (m, _) in record.success.items()
                                                                if t != "avg"}
    return task_means(record.clips) if record.clips else {t: v for t, v in recognition(record).items() if t != "avg"}


def secondary_values(record: RunRecord) -> dict[str, float]:
    """A run's measures on the test scenes and clips beside the two compared per task: mean success told the
    held-out paraphrases or the twin tasks' instructions, recognition of part of each clip or of the paraphrases."""
    measures = test_measures(record)
    measures.pop(clip_measure("instruction", 1.0), None)  # compared per task already
    return measures


def by_seed(runs: list[RunRecord], values: Callable[[RunRecord], dict[str, float]]) -> dict:
    """Each run's values keyed by its seed; by its own name where seeds are missing or repeated, so that such
    runs are never paired (by position or otherwise) with another group's."""
    seeds = [r.config.get("seed") for r in runs]
    keys = seeds if None not in seeds and len(set(seeds)) == len(seeds) else [r.name for r in runs]
    return {k: v for k, r in zip(keys, runs, strict=True) if (v := values(r))}


@dataclass
class Comparison:
    measure: str
    rows: list[TaskTest]
    seeds: list  # group A's run keys (seeds, or names where seeds are missing)


def compare(a: list[RunRecord], b: list[RunRecord]) -> list[Comparison]:
    """Success and recognition of two groups, over their runs (see `stats.compare_groups`)."""
    out = []
    for measure in ("success (%)", "recognition top-1 (%)"):
        values = partial(run_values, measure=measure)
        left, right = by_seed(a, values), by_seed(b, values)
        if len(left) >= 2 and len(right) >= 2 and (rows := compare_groups(left, right)):
            out.append(Comparison(measure, rows, sorted(left, key=str)))
    return out


@dataclass
class Secondary:
    measure: str
    test: RunTest
    p_holm: float  # adjusted over the secondary measures of the comparison


def compare_secondary(a: list[RunRecord], b: list[RunRecord]) -> list[Secondary]:
    """Each secondary measure (`secondary_values`) that both groups have on 2 runs or more, over runs as the
    primary ones are; p-values adjusted over these measures (Holm)."""
    left, right = by_seed(a, secondary_values), by_seed(b, secondary_values)
    tests = []
    for measure in dict.fromkeys(m for values in left.values() for m in values):
        x = {k: v[measure] for k, v in left.items() if measure in v}
        y = {k: v[measure] for k, v in right.items() if measure in v}
        if len(x) >= 2 and len(y) >= 2:
            tests.append((measure, over_runs(x, y)))
    return [Secondary(m, t, p) for (m, t), p in zip(tests, holm([t.p for _, t in tests]), strict=True)]


def secondary_table(name_a: str, name_b: str, rows: list[Secondary]) -> str:
    """The secondary measures' comparisons with the difference each design finds with 80% power."""
    head = ["measure", name_a, name_b, f"{name_a} - {name_b} [95% CI]", "p", "p (Holm)",
            f"found with {POWER:.0%} power", "runs"]
    lines = []
    for row in rows:
        t, digits = row.test, 1 if "(%)" in row.measure else 3
        smallest = detectable(t.sd, min(t.n_a, t.n_b), t.paired)
        lines.append([row.measure, f"{t.mean_a:.{digits}f}", f"{t.mean_b:.{digits}f}",
                      f"{t.diff.mean:+.{digits}f} [{t.diff.lo:+.{digits}f}, {t.diff.hi:+.{digits}f}]", _p(t.p),
                      _p(row.p_holm), "n/a (no spread)" if np.isnan(smallest) else f"{smallest:.{digits}f}",
                      f"{t.n_a} / {t.n_b}"])
    return table(head, lines)


def power_note(measure: str, test: RunTest) -> str:
    """What the design can detect: the difference found with 80% power at the observed spread between runs,
    and the seeds a difference of 2 and of 5 points would need."""
    n = min(test.n_a, test.n_b)
    spread = "the per-seed differences" if test.paired else "the runs (both groups)"
    smallest = detectable(test.sd, n, test.paired)
    if not np.isfinite(smallest):
        return f"{measure}: no spread between runs was observed, so the design's power cannot be estimated."
    need = [runs_needed(d, test.sd, test.paired) for d in (2.0, 5.0)]
    n2, n5 = (str(k) if k else "more than 1000" for k in need)
    return (f"{measure}, mean over tasks: with {n} runs per group and the observed spread of {spread} "
            f"(sd {test.sd:.1f} points), a difference of {smallest:.1f} points is found with {POWER:.0%} power "
            f"(two-sided t, alpha {ALPHA:g}); a difference of 2 points would need {n2} runs per group, one of 5 "
            f"points {n5}.")


def _p(value: float) -> str:
    return "n/a (no spread)" if np.isnan(value) else f"{value:.3g}"


def comparable(name_a: str, name_b: str, a: list[RunRecord], b: list[RunRecord]) -> list[Comparison]:
    """`compare(a, b)`, or a one-line error where either group has fewer than 2 runs to compare."""
    comparisons = compare(a, b)
    if not comparisons:
        raise MirrorError(f"--compare {name_a} {name_b}: each group needs at least 2 runs with evaluated success "
                          "or recognition (run `mirror eval` on each run's checkpoint, with the same data)")
    return comparisons


def comparison_section(name_a: str, name_b: str, a: list[RunRecord], b: list[RunRecord],
                       comparisons: list[Comparison], out: Path) -> str:
    """The Markdown section of one comparison (from `comparable`), its charts written into `out`."""
    first = comparisons[0].rows[0].test
    seeds = ", ".join(map(str, comparisons[0].seeds))
    how = (f"paired by seed (seeds {seeds} in both groups; the pairing assumes a seed gives both groups the same "
           "data and test scenes)" if first.paired else
           f"by Welch's t over runs ({first.n_a} against {first.n_b} runs; the groups' seeds differ, so they are not "
           "paired)")
    head = ["measure", "task", name_a, name_b, f"{name_a} - {name_b} [95% CI]", "p", "p (Holm)", "runs"]
    lines = []
    for c in comparisons:
        for row in c.rows:
            t = row.test
            lines.append([c.measure, row.task, f"{t.mean_a:.1f}", f"{t.mean_b:.1f}",
                          f"{t.diff.mean:+.1f} [{t.diff.lo:+.1f}, {t.diff.hi:+.1f}]", _p(t.p),
                          "" if row.p_holm is None else _p(row.p_holm), f"{t.n_a} / {t.n_b}"])
    tasks = len(comparisons[0].rows) - 1
    parts = [f"## {name_a} against {name_b}",
             "The unit is the training run: each run's success on the test scenes (recognition of the test clips) "
             f"per task and its mean over tasks, compared {how}. p (Holm): the per-task p-values adjusted over the "
             f"{tasks} tasks by Holm's method (the chance of any false positive among them at most alpha, whatever "
             "their dependence).",
             table(head, lines)]
    dropped = {name: sum(r.lost for r in runs) for name, runs in ((name_a, a), (name_b, b))}
    if any(dropped.values()):
        parts.append("Test episodes lost to errors, left out of the rates: "
                     + ", ".join(f"{name} {n}" for name, n in dropped.items()) + ".")
    parts += [power_note(c.measure, c.rows[0].test) for c in comparisons]
    if secondary := compare_secondary(a, b):
        parts += [f"Secondary measures of the test scenes and clips, each run's value compared the same way; p "
                  f"(Holm) adjusted over these {len(secondary)} measures (recognition as a fraction of the clips):",
                  secondary_table(name_a, name_b, secondary)]
    for c in comparisons:
        chosen = {row.task: row.test.diff for row in c.rows}
        slug = re.sub(r"[^a-z0-9]+", "_", f"{name_a}_vs_{name_b}_{c.measure.split(' ')[0]}".lower())
        runs = f"{c.rows[0].test.n_a} + {c.rows[0].test.n_b}"
        difference_chart(chosen, out / f"{slug}.png", f"{name_a} - {name_b}: {c.measure}\n95% CI over {runs} runs")
    return "\n\n".join(parts) + "\n"
