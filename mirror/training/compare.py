"""`mirror report RUN_DIR...`: finished runs side by side, mean +- std over seeds, as Markdown and PNG.

Runs are grouped by their name without the `-seedN` suffix; every numeric row of their `summary.json`
(written at the end of training) is averaged over the group.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirror.errors import MirrorError
from mirror.training.plots import bar_chart


def read_summaries(runs: Sequence[str | Path]) -> dict[str, list[dict[str, float]]]:
    """Summary rows ({metric: value}) of each run, grouped by run name without its seed suffix."""
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for run in map(Path, runs):
        path = run / "summary.json"
        if not path.is_file():
            raise MirrorError(f"{run}: no summary.json (has the run finished?)")
        rows = json.loads(path.read_text())["summary"]
        groups[re.sub(r"-seed\d+$", "", run.name)].append({name: v for name, v, _ in rows if v is not None})
    return dict(groups)


def comparison(groups: dict[str, list[dict[str, float]]]) -> tuple[str, dict[str, dict[str, tuple[float, float]]]]:
    """Markdown table (metric rows, one column per group: mean +- std over its runs) and the numbers."""
    metrics = list(dict.fromkeys(m for runs in groups.values() for r in runs for m in r))
    stats = {g: {m: (float(np.mean(v)), float(np.std(v))) for m in metrics
                 if (v := [r[m] for r in runs if m in r])} for g, runs in groups.items()}
    head = ["metric"] + [f"{g} (n={len(groups[g])})" for g in groups]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in metrics:
        cells = [f"{stats[g][m][0]:.3f} ± {stats[g][m][1]:.3f}" if m in stats[g] else "n/a" for g in groups]
        lines.append("| " + " | ".join([m, *cells]) + " |")
    return "\n".join(lines), stats


def report(runs: Sequence[str | Path], out: Path) -> Path:
    """Write `comparison.md` and one bar chart per metric into `out`; returns the Markdown path."""
    groups = read_summaries(runs)
    table, stats = comparison(groups)
    out.mkdir(parents=True, exist_ok=True)
    for i, metric in enumerate(dict.fromkeys(m for s in stats.values() for m in s)):
        have = {g: s[metric] for g, s in stats.items() if metric in s}
        scale = max(abs(v[0]) for v in have.values())
        bar_chart({g: v[0] for g, v in have.items()}, out / f"metric{i:02d}.png", metric, metric,
                  errors={g: v[1] for g, v in have.items()}, limit=(0, 100) if scale > 1.5 else (0, 1))
    path = out / "comparison.md"
    path.write_text(f"# Comparison over seeds\n\n{table}\n")
    return path
