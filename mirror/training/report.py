"""`mirror report RUN_DIR...`: finished runs gathered into the paper's tables, as Markdown and PNG.

- Table 1: action recognition top-1 (%) per task (validation metric `val/u/recognition/<task>`);
- Table 2: success (%) per task, mean +- std over evaluation repeats (`mirror eval`, or the last rollouts);
- Table 3: the ablation grid, positives x temperature, each cell "AU / EE" (mean recognition / success);
- seeds: runs named `<name>-seed<N>` grouped, every summary metric as mean +- std: a run's `summary.json`
  (BabyAI), or else its success per task and on average, recognition top-1 and alignment Recall@1.

A run contributes whatever it has: the newest `eval/*/metrics.json`, else its last validation record
(`validation/step*.json`, written during training), and `summary.json` when present.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mirror.errors import MirrorError
from mirror.training.plots import bar_chart
from mirror.training.tables import markdown as table2_markdown


@dataclass
class RunRecord:
    path: Path
    name: str
    config: dict
    metrics: dict[str, float] = field(default_factory=dict)
    success: dict[str, tuple[float, float]] = field(default_factory=dict)  # task or "avg" -> (mean, std)
    summary: dict[str, float] = field(default_factory=dict)


def _newest(paths: list[Path]) -> Path | None:
    return max(paths, key=lambda p: p.stat().st_mtime_ns) if paths else None


def read_run(path: str | Path) -> RunRecord:
    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise MirrorError(f"{path}: not a run directory (no config.yaml)")
    config = yaml.safe_load((path / "config.yaml").read_text())
    record = RunRecord(path, config["run"]["name"], config)
    evaluation = _newest(list(path.glob("eval/*/metrics.json")))
    if evaluation is not None:
        data = json.loads(evaluation.read_text())
        record.metrics = data.get("metrics", {})
        record.success = {t: (v["mean"], v["std"]) for t, v in data.get("success", {}).items()}
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
    else:
        record.summary = headline(record)
    return record


def headline(record: RunRecord) -> dict[str, float]:
    """What a run without a summary of its own is compared by over seeds: success (mean over tasks, then per
    task), recognition top-1 and alignment Recall@1 on the validation data."""
    out = {f"success rate {'mean' if task == 'avg' else task} (%)": mean
           for task, (mean, _) in sorted(record.success.items(), key=lambda item: item[0] != "avg")}
    names = {"val/u/recognition": "recognition top-1 (val)", "val/align/recall1": "alignment Recall@1 (val)"}
    for key, name in names.items():
        if key in record.metrics:
            out[name] = record.metrics[key]
    return out


def recognition(record: RunRecord) -> dict[str, float]:
    """Per-task top-1 recognition (%) and its mean over tasks."""
    per_task = {k.removeprefix("val/u/recognition/"): 100 * v for k, v in record.metrics.items()
                if k.startswith("val/u/recognition/")}
    if per_task:
        per_task["avg"] = float(np.nanmean(list(per_task.values())))
    return per_task


def table1(records: list[RunRecord]) -> str | None:
    rows = {r.name: recognition(r) for r in records if recognition(r)}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    head = ["Method", "Avg.", *tasks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        lines.append("| " + " | ".join([name, *(f"{row[k]:.1f}" if k in row else "n/a" for k in ["avg", *tasks])])
                     + " |")
    return "\n".join(lines)


def table2(records: list[RunRecord]) -> str | None:
    rows = {r.name: r.success for r in records if r.success}
    if not rows:
        return None
    tasks = sorted({t for row in rows.values() for t in row} - {"avg"})
    missing = (float("nan"), float("nan"))
    filled = {name: {t: row.get(t, missing) for t in ["avg", *tasks]} for name, row in rows.items()}
    return table2_markdown(filled, tasks)


def table3(records: list[RunRecord]) -> str | None:
    """Positives (rows) x temperature (columns); a cell is 'AU / EE' of the run with those settings."""
    cells: dict[tuple[str, float], str] = {}
    for r in records:
        align = r.config.get("align", {})
        if align.get("weight", 0) <= 0:
            continue
        au = recognition(r).get("avg")
        ee = r.success.get("avg", (None, None))[0]
        show = f"{'n/a' if au is None else f'{au:.1f}'} / {'n/a' if ee is None else f'{ee:.1f}'}"
        cells[(align["positives"], float(align["tau"]))] = show
    if len(cells) < 2:
        return None
    taus = sorted({tau for _, tau in cells})
    order = [p for p in ("episode", "instruction", "task") if any(k[0] == p for k in cells)]
    lines = ["| positives | " + " | ".join(f"tau {t:g} (AU / EE)" for t in taus) + " |", "|" + "---|" * (len(taus) + 1)]
    for p in order:
        lines.append(f"| {p} | " + " | ".join(cells.get((p, t), "") for t in taus) + " |")
    return "\n".join(lines)


def _percent(means: list[float]) -> bool:
    """Whether a metric's values are percentages rather than fractions (any magnitude above 1.5)."""
    return max(abs(m) for m in means) > 1.5


def seeds(records: list[RunRecord]) -> tuple[str | None, dict]:
    """Summary metrics grouped by run name without `-seedN`: mean +- std per group."""
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for r in records:
        if r.summary:
            groups[re.sub(r"-seed\d+$", "", r.name)].append(r.summary)
    if not groups:
        return None, {}
    metrics = list(dict.fromkeys(m for runs in groups.values() for s in runs for m in s))
    stats = {g: {m: (float(np.mean(v)), float(np.std(v))) for m in metrics if (v := [s[m] for s in runs if m in s])}
             for g, runs in groups.items()}
    head = ["metric"] + [f"{g} (n={len(groups[g])})" for g in groups]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics:
        digits = 1 if _percent([stats[g][m][0] for g in groups if m in stats[g]]) else 3
        cells = [f"{stats[g][m][0]:.{digits}f} ± {stats[g][m][1]:.{digits}f}" if m in stats[g] else "n/a"
                 for g in groups]
        lines.append("| " + " | ".join([m, *cells]) + " |")
    return "\n".join(lines), stats


def report(runs: Sequence[str | Path], out: Path) -> Path:
    """Write `report.md` and the charts into `out`; returns the Markdown path."""
    records = [read_run(r) for r in runs]
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for title, table in (("Table 1: action recognition top-1 (%)", table1(records)),
                         ("Table 2: success rate (%), mean ± std over evaluations", table2(records)),
                         ("Table 3: positives x temperature (AU / EE)", table3(records))):
        if table:
            sections.append(f"## {title}\n\n{table}\n")
    seed_table, stats = seeds(records)
    if seed_table:
        sections.append(f"## Over seeds (mean ± std)\n\n{seed_table}\n")
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
        percent = _percent([v[0] for v in have.values()])
        bar_chart({g: v[0] for g, v in have.items()}, out / f"seeds{i:02d}.png", metric, metric,
                  errors={g: v[1] for g, v in have.items()}, limit=(0, 100) if percent else (0, 1))
    path = out / "report.md"
    path.write_text("# Report\n\n" + "\n".join(sections))
    return path
