"""`mirror report RUN_DIR... [--compare A B]`: runs gathered into the paper's tables, over seeds with intervals,
and comparisons of two groups of runs with the run as the unit, as Markdown and PNG.

- Table 1: action recognition top-1 (%) per task (held-out test clips of `mirror eval`, else validation);
- Table 2: success (%) per task, mean +- sample std over evaluation repeats (`mirror eval`, or the last rollouts),
  with where each row comes from;
- Table 3: the ablation grid, positives x temperature, each cell "AU / EE" (mean recognition / success, over seeds);
- over seeds: runs named `<name>-seed<N>` grouped; every headline metric as mean +- sample std (ddof 1) and
  the t-based 95% interval of the mean;
- `--compare A B` (groups by name): A - B on success and on recognition, on each run's mean over tasks and
  per task, with the training run as the unit (`stats.compare_groups`: paired by seed, else Welch's t; per-task
  p-values also Holm-adjusted), and the smallest difference the design detects; then the secondary measures
  (success told the paraphrases or the twins' instructions, recognition of part of each clip or of the
  paraphrases) the same way, Holm-adjusted over them;
- twins: success with each episode's own instruction against its twin task's (`mirror eval --twin`).

A run contributes whatever it has (`runs.read_run`): the full evaluation of its latest checkpoint step
(`eval/*/`: metrics.json, episodes.csv, recognition.csv) or the one named with `--eval`, else its last
validation record (`validation/step*.json`), and `summary.json` when present; the report names, for every run,
which evaluation its figures come from, how many episodes they rest on, and which evaluations it skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirror.analysis.comparison import comparable, comparison_section
from mirror.analysis.runs import RunRecord, groups, read_run, recognition
from mirror.analysis.stats import Interval, interval
from mirror.analysis.tables import markdown as table2_markdown
from mirror.analysis.tables import table
from mirror.errors import ConfigError, MirrorError
from mirror.plots import bar_chart, learning_curves


def table1(records: list[RunRecord]) -> str | None:
    rows = {r.name: recognition(r) for r in records if recognition(r)}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    return table(["Method", "Avg.", *tasks], [[name, *(f"{row[k]:.1f}" if k in row else "n/a"
                                                        for k in ["avg", *tasks])] for name, row in rows.items()])


def table2(records: list[RunRecord]) -> str | None:
    rows = {r.name: r.success for r in records if r.success}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    missing = (float("nan"), float("nan"))
    filled = {name: {t: row.get(t, missing) for t in ["avg", *tasks]} for name, row in rows.items()}
    return table2_markdown(filled, tasks, {r.name: r.source for r in records if r.success})


def table3(records: list[RunRecord]) -> str | None:
    """Positives (rows) x temperature (columns); a cell is 'AU / EE' of the runs with those settings, averaged
    over their seeds (the count shown when there are several)."""
    cells: dict[tuple[str, float], list[tuple[float | None, float | None]]] = defaultdict(list)
    for r in records:
        align = r.config.get("align", {})
        if align.get("weight", 0) <= 0:
            continue
        cells[(align["positives"], float(align["tau"]))].append(
            (recognition(r).get("avg"), r.success.get("avg", (None, None))[0]))
    if len(cells) < 2:
        return None

    def show(runs: list[tuple[float | None, float | None]]) -> str:
        means = [[v for v in values if v is not None] for values in zip(*runs, strict=True)]
        text = " / ".join(f"{np.mean(m):.1f}" if m else "n/a" for m in means)
        return text + (f" (n={len(runs)})" if len(runs) > 1 else "")

    taus = sorted({tau for _, tau in cells})
    order = [p for p in ("episode", "instruction", "task") if any(k[0] == p for k in cells)]
    return table(["positives", *(f"tau {t:g} (AU / EE)" for t in taus)],
                 [[p, *(show(cells[(p, t)]) if (p, t) in cells else "" for t in taus)] for p in order])


def _percent(metric: str, means: list[float]) -> bool:
    """Whether a metric's values are percentages rather than fractions: named so, or any magnitude above 1.5."""
    return "(%)" in metric or max(abs(m) for m in means) > 1.5


def seeds(records: list[RunRecord]) -> tuple[str | None, dict[str, dict[str, Interval]]]:
    """Headline metrics per group of seeds: mean +- sample std [95% interval]."""
    grouped = {g: [r.summary for r in runs] for g, runs in groups(records).items() if any(r.summary for r in runs)}
    if not grouped:
        return None, {}
    metrics = list(dict.fromkeys(m for runs in grouped.values() for s in runs for m in s))
    stats = {g: {m: interval(v) for m in metrics if (v := [s[m] for s in runs if m in s])}
             for g, runs in grouped.items()}
    rows = []
    for m in metrics:
        digits = 1 if _percent(m, [stats[g][m].mean for g in grouped if m in stats[g]]) else 3
        rows.append([m, *(stats[g][m].show(digits) if m in stats[g] else "n/a" for g in grouped)])
    return table(["metric", *(f"{g} (n={len(grouped[g])})" for g in grouped)], rows), stats


def twins_section(records: list[RunRecord]) -> str | None:
    """Success with each episode's own instruction and with its twin task's, per task, over each group."""
    rows = []
    for name, runs in groups(records).items():
        tasks = sorted({t for r in runs for t in r.twin} - {"avg"})
        for task in tasks:
            own = [r.success[task][0] for r in runs if task in r.twin and task in r.success]
            twin = [r.twin[task] for r in runs if task in r.twin and task in r.success]
            if own:
                ratio = np.mean(twin) / np.mean(own) if np.mean(own) > 0 else float("nan")
                rows.append([name, task, f"{np.mean(own):.1f}", f"{np.mean(twin):.1f}", f"{ratio:.2f}"])
    if not rows:
        return None
    return table(["group", "task", "own instruction (%)", "twin's instruction (%)", "twin / own"], rows)


def skipped_section(records: list[RunRecord]) -> str | None:
    """The evaluations each run has beside the one its figures come from."""
    lines = [f"- {r.name}: {', '.join(r.skipped)}" for r in records if r.skipped]
    return "Evaluations not used (the report takes each run's full evaluation of its latest checkpoint step; "\
        "`--eval NAME` names another):\n\n" + "\n".join(lines) if lines else None


def report(runs: Sequence[str | Path], out: Path, comparisons: Sequence[tuple[str, str]] = (),
           evaluation: str | None = None) -> Path:
    """Write `report.md` and the charts into `out`; returns the Markdown path. `evaluation` names the
    evaluation folder (`eval/NAME`) to take from every run."""
    records = [read_run(r, evaluation) for r in runs]
    by_group = groups(records)
    for pair in comparisons:
        for name in pair:
            if name not in by_group:
                raise ConfigError(f"--compare: no group '{name}' among the runs; groups: {', '.join(by_group)}")
    compared = [(a, b, comparable(a, b, by_group[a], by_group[b])) for a, b in comparisons]
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for title, text in (("Table 1: action recognition top-1 (%)", table1(records)),
                        ("Table 2: success rate (%), mean ± sample std over evaluation repeats", table2(records)),
                        ("Table 3: positives x temperature (AU / EE)", table3(records)),
                        ("Does the policy need language? Success with the twin task's instruction",
                         twins_section(records)),
                        ("Evaluations skipped", skipped_section(records))):
        if text:
            sections.append(f"## {title}\n\n{text}\n")
    seed_table, stats = seeds(records)
    if seed_table:
        sections.append(f"## Over seeds (mean ± sample std [95% interval of the mean])\n\n{seed_table}\n")
    for name_a, name_b, found in compared:
        sections.append(comparison_section(name_a, name_b, by_group[name_a], by_group[name_b], found, out))
    if not sections:
        raise MirrorError("these runs have no evaluation, validation record or summary to report")
    successes = {r.name: r.success["avg"] for r in records if "avg" in r.success}
    if successes:
        bar_chart({n: v[0] for n, v in successes.items()}, out / "success.png", "mean success (%)", "success %",
                  errors={n: np.nan_to_num(v[1]) for n, v in successes.items()},
                  counts={r.name: len(r.scenes) for r in records if r.scenes})
    recognised = {r.name: recognition(r)["avg"] for r in records if recognition(r)}
    if recognised:
        bar_chart(recognised, out / "recognition.png", "mean recognition top-1 (%)", "top-1 %",
                  counts={r.name: len(r.clips) for r in records if r.clips})
    for i, metric in enumerate(dict.fromkeys(m for s in stats.values() for m in s)):
        have = {g: s[metric] for g, s in stats.items() if metric in s}
        percent = _percent(metric, [v.mean for v in have.values()])
        bar_chart({g: v.mean for g, v in have.items()}, out / f"seeds{i:02d}.png", metric, metric,
                  errors={g: (v.hi - v.mean if v.n > 1 else 0.0) for g, v in have.items()},
                  limit=(0, 100) if percent else (0, 1), counts={g: v.n for g, v in have.items()})
    for name, runs in by_group.items():
        curves = [r.curve for r in runs if r.curve]
        if curves:
            steps = sorted(set.intersection(*(set(c) for c in curves)))
            tasks = [t for t in curves[0][steps[-1]] if t != "avg"] if steps else []
            series = {t: [[c[s].get(t, np.nan) for s in steps] for c in curves] for t in ["avg", *tasks]}
            learning_curves(steps, series, out / f"curves_{name}.png",
                            f"{name}: rollout success during training ({len(curves)} run(s))")
    path = out / "report.md"
    path.write_text("# Report\n\n" + "\n".join(sections))
    return path
