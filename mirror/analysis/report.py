"""`mirror report RUN_DIR... [--compare A B]`: runs gathered into the paper's tables, over seeds with intervals,
and comparisons of two groups of runs with the run as the unit, as Markdown and PNG.

- Table 1: action recognition top-1 (%) per task (held-out test clips of `mirror eval`, else validation);
- Table 2: success (%) per task, mean +- std over evaluation repeats (`mirror eval`, or the last rollouts);
- Table 3: the ablation grid, positives x temperature, each cell "AU / EE" (mean recognition / success, over seeds);
- over seeds: runs named `<name>-seed<N>` grouped; every headline metric as mean +- sample std (ddof 1) and
  the t-based 95% interval of the mean;
- `--compare A B` (groups by name): A - B on success and on recognition, on each run's mean over tasks and
  per task, with the training run as the unit (`stats.compare_groups`: paired by seed, else Welch's t; per-task
  p-values also Holm-adjusted), and the smallest difference the design detects;
- twins: success with each episode's own instruction against its twin task's (`mirror eval --twin`).

A run contributes whatever it has: its newest evaluation (`eval/*/`: metrics.json, episodes.csv,
recognition.csv), else its last validation record (`validation/step*.json`), and `summary.json` when present.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mirror.analysis.stats import (
    ALPHA,
    POWER,
    Interval,
    RunTest,
    TaskTest,
    compare_groups,
    detectable,
    interval,
    runs_needed,
)
from mirror.analysis.tables import markdown as table2_markdown
from mirror.errors import ConfigError, MirrorError
from mirror.plots import bar_chart, difference_chart, learning_curves

Item = tuple[str, int]  # (task, scene seed) or (task, clip)


@dataclass
class RunRecord:
    path: Path
    name: str
    config: dict
    metrics: dict[str, float] = field(default_factory=dict)
    success: dict[str, tuple[float, float]] = field(default_factory=dict)  # task or "avg" -> (mean, std)
    summary: dict[str, float] = field(default_factory=dict)
    scenes: dict[Item, float] = field(default_factory=dict)  # test scene -> success (mean over repeats)
    clips: dict[Item, float] = field(default_factory=dict)  # test clip -> recognised (whole episode)
    twin: dict[str, float] = field(default_factory=dict)  # task -> success with the twin task's instruction
    curve: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> task or "avg" -> success (%)
    lost: int = 0  # test episodes lost to errors (left out of `scenes`)

    @property
    def group(self) -> str:
        return re.sub(r"-seed\d+$", "", self.name)


def _newest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.stat().st_mtime_ns) if paths else None


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def lost(row: dict) -> bool:
    """An episode that did not run to its end (a crashed or hung worker): it has no scene and no outcome."""
    return int(row.get("seed", 0)) < 0


def per_item(rows: list[dict], key: str, value: str) -> dict[Item, float]:
    """Mean of `value` per (task, key) over the rows (e.g. a scene's repeats); lost episodes left out."""
    groups: dict[Item, list[float]] = defaultdict(list)
    for row in rows:
        if not lost(row):
            groups[(row["task"], int(row[key]))].append(float(row[value] in ("True", "1")))
    return {k: float(np.mean(v)) for k, v in groups.items()}


def read_run(path: str | Path) -> RunRecord:
    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise MirrorError(f"{path}: not a run directory (no config.yaml)")
    config = yaml.safe_load((path / "config.yaml").read_text())
    record = RunRecord(path, config["run"]["name"], config)
    folders = [p.parent for p in path.glob("eval/*/metrics.json")]
    evaluation = _newest([f / "metrics.json" for f in folders if not f.name.endswith("_twin")])
    if evaluation is not None:
        data = json.loads(evaluation.read_text())
        record.metrics = data.get("metrics", {})
        record.success = {t: (v["mean"], np.nan if v["std"] is None else v["std"])
                          for t, v in data.get("success", {}).items()}
        if (evaluation.parent / "episodes.csv").is_file():
            episodes = _rows(evaluation.parent / "episodes.csv")
            record.scenes = per_item(episodes, "seed", "success")
            record.lost = sum(map(lost, episodes))
        if (evaluation.parent / "recognition.csv").is_file():
            rows = [r for r in _rows(evaluation.parent / "recognition.csv")
                    if r["phrasing"] == "instruction" and float(r["span"]) == 1.0]
            record.clips = per_item(rows, "clip", "correct")
    twin = _newest([f / "metrics.json" for f in folders if f.name.endswith("_twin")])
    if twin is not None:
        record.twin = {t: v["mean"] for t, v in json.loads(twin.read_text()).get("success", {}).items()}
    for step_file in sorted(path.glob("validation/step*.json")):
        rates = {k.removeprefix("rollout/success").lstrip("/") or "avg": v
                 for k, v in json.loads(step_file.read_text()).items() if k.startswith("rollout/success")}
        if rates:
            record.curve[int(step_file.stem.removeprefix("step"))] = rates
    validation = _newest(list(path.glob("validation/step*.json")))
    if validation is not None and not record.metrics:
        record.metrics = json.loads(validation.read_text())
    if validation is not None and not record.success:
        last = json.loads(validation.read_text())
        rates = {k.removeprefix("rollout/success/"): v for k, v in last.items() if k.startswith("rollout/success/")}
        if rates:
            average = float(np.mean(list(rates.values())))
            record.success = {**{t: (v, 0.0) for t, v in rates.items()}, "avg": (average, 0.0)}
    if (path / "summary.json").is_file():
        rows = json.loads((path / "summary.json").read_text())["summary"]
        record.summary = {name: v for name, v, _ in rows if v is not None}
    record.summary.update(headline(record))
    return record


HEADLINE = {"val/u/recognition": "recognition top-1 (val)", "val/align/recall1": "alignment Recall@1 (val)"}


def headline(record: RunRecord) -> dict[str, float]:
    """What runs are compared by over seeds: success on the test scenes (mean over tasks, then per task),
    recognition of the test clips (instructions at each clip span, paraphrases) or of the validation clips,
    and alignment Recall@1 on the validation data."""
    out = {f"success rate {'mean' if task == 'avg' else task} (%)": mean
           for task, (mean, _) in sorted(record.success.items(), key=lambda item: item[0] != "avg")}
    for key, value in record.metrics.items():
        if key.startswith("recognition/") and key.count("/") == 1:
            kind, span = key.removeprefix("recognition/").split("@")
            out[f"recognition top-1, {kind}s, first {float(span):.0%} of the clip (test)"] = value
    for key, name in HEADLINE.items():
        if key in record.metrics:
            out[name] = record.metrics[key]
    return out


def recognition(record: RunRecord) -> dict[str, float]:
    """Per-task top-1 recognition (%) and its mean over tasks: of the test clips when evaluated, else val."""
    prefix = "recognition/instruction@1/" if any(k.startswith("recognition/") for k in record.metrics) \
        else "val/u/recognition/"
    per_task = {k.removeprefix(prefix): 100 * v for k, v in record.metrics.items() if k.startswith(prefix)}
    if per_task:
        per_task["avg"] = float(np.nanmean(list(per_task.values())))
    return per_task


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |"
                                                                                  for r in rows)])


def table1(records: list[RunRecord]) -> str | None:
    rows = {r.name: recognition(r) for r in records if recognition(r)}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    return _table(["Method", "Avg.", *tasks], [[name, *(f"{row[k]:.1f}" if k in row else "n/a"
                                                        for k in ["avg", *tasks])] for name, row in rows.items()])


def table2(records: list[RunRecord]) -> str | None:
    rows = {r.name: r.success for r in records if r.success}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    missing = (float("nan"), float("nan"))
    filled = {name: {t: row.get(t, missing) for t in ["avg", *tasks]} for name, row in rows.items()}
    return table2_markdown(filled, tasks)


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
    return _table(["positives", *(f"tau {t:g} (AU / EE)" for t in taus)],
                  [[p, *(show(cells[(p, t)]) if (p, t) in cells else "" for t in taus)] for p in order])


def _percent(metric: str, means: list[float]) -> bool:
    """Whether a metric's values are percentages rather than fractions: named so, or any magnitude above 1.5."""
    return "(%)" in metric or max(abs(m) for m in means) > 1.5


def groups(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        out[r.group].append(r)
    return dict(out)


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
    return _table(["metric", *(f"{g} (n={len(grouped[g])})" for g in grouped)], rows), stats


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


def by_seed(runs: list[RunRecord], measure: str) -> dict:
    """Each run's values keyed by its seed (by its position where seeds are missing or repeated)."""
    seeds = [r.config.get("seed") for r in runs]
    keys = seeds if None not in seeds and len(set(seeds)) == len(seeds) else [f"run{i}" for i in range(len(runs))]
    return {k: v for k, r in zip(keys, runs, strict=True) if (v := run_values(r, measure))}


@dataclass
class Comparison:
    measure: str
    rows: list[TaskTest]


def compare(a: list[RunRecord], b: list[RunRecord]) -> list[Comparison]:
    """Success and recognition of two groups, over their runs (see `stats.compare_groups`)."""
    out = []
    for measure in ("success (%)", "recognition top-1 (%)"):
        left, right = by_seed(a, measure), by_seed(b, measure)
        if len(left) >= 2 and len(right) >= 2 and (rows := compare_groups(left, right)):
            out.append(Comparison(measure, rows))
    return out


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


def comparison_section(name_a: str, name_b: str, a: list[RunRecord], b: list[RunRecord], out: Path) -> str:
    comparisons = compare(a, b)
    if not comparisons:
        raise MirrorError(f"--compare {name_a} {name_b}: each group needs at least 2 runs with evaluated success "
                          "or recognition (run `mirror eval` on each run's checkpoint, with the same data)")
    first = comparisons[0].rows[0].test
    seeds = ", ".join(map(str, sorted(by_seed(a, comparisons[0].measure), key=str)))
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
             _table(head, lines)]
    dropped = {name: sum(r.lost for r in runs) for name, runs in ((name_a, a), (name_b, b))}
    if any(dropped.values()):
        parts.append("Test episodes lost to errors, left out of the rates: "
                     + ", ".join(f"{name} {n}" for name, n in dropped.items()) + ".")
    parts += [power_note(c.measure, c.rows[0].test) for c in comparisons]
    for c in comparisons:
        chosen = {row.task: row.test.diff for row in c.rows}
        slug = re.sub(r"[^a-z0-9]+", "_", f"{name_a}_vs_{name_b}_{c.measure.split(' ')[0]}".lower())
        difference_chart(chosen, out / f"{slug}.png", f"{name_a} - {name_b}: {c.measure}, 95% CI over runs")
    return "\n\n".join(parts) + "\n"


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
    return _table(["group", "task", "own instruction (%)", "twin's instruction (%)", "twin / own"], rows)


def report(runs: Sequence[str | Path], out: Path, comparisons: Sequence[tuple[str, str]] = ()) -> Path:
    """Write `report.md` and the charts into `out`; returns the Markdown path."""
    records = [read_run(r) for r in runs]
    by_group = groups(records)
    for pair in comparisons:
        for name in pair:
            if name not in by_group:
                raise ConfigError(f"--compare: no group '{name}' among the runs; groups: {', '.join(by_group)}")
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for title, table in (("Table 1: action recognition top-1 (%)", table1(records)),
                         ("Table 2: success rate (%), mean ± sample std over evaluations", table2(records)),
                         ("Table 3: positives x temperature (AU / EE)", table3(records)),
                         ("Does the policy need language? Success with the twin task's instruction",
                          twins_section(records))):
        if table:
            sections.append(f"## {title}\n\n{table}\n")
    seed_table, stats = seeds(records)
    if seed_table:
        sections.append(f"## Over seeds (mean ± sample std [95% interval of the mean])\n\n{seed_table}\n")
    for name_a, name_b in comparisons:
        sections.append(comparison_section(name_a, name_b, by_group[name_a], by_group[name_b], out))
    if not sections:
        raise MirrorError("these runs have no evaluation, validation record or summary to report")
    successes = {r.name: r.success["avg"] for r in records if "avg" in r.success}
    if successes:
        bar_chart({n: v[0] for n, v in successes.items()}, out / "success.png", "mean success (%)", "success %",
                  errors={n: v[1] for n, v in successes.items()})
    recognised = {r.name: recognition(r)["avg"] for r in records if recognition(r)}
    if recognised:
        bar_chart(recognised, out / "recognition.png", "mean recognition top-1 (%)", "top-1 %")
    for i, metric in enumerate(dict.fromkeys(m for s in stats.values() for m in s)):
        have = {g: s[metric] for g, s in stats.items() if metric in s}
        percent = _percent(metric, [v.mean for v in have.values()])
        bar_chart({g: v.mean for g, v in have.items()}, out / f"seeds{i:02d}.png", metric, metric,
                  errors={g: (v.hi - v.mean if v.n > 1 else 0.0) for g, v in have.items()},
                  limit=(0, 100) if percent else (0, 1))
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
