"""Success-rate tables in the layout of the paper's Table 2: one row per method, mean +- sample std (ddof 1) over
repeated evaluations for the average and for every task (the mean alone after one evaluation); written as
Markdown, PNG and per-episode CSV. Lost episodes (a crashed or hung worker) are left out of the rates and
counted apart."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirror.plots import bar_chart
from mirror.rollouts.episode import EpisodeResult, error_counts


def success_rates(results: list[EpisodeResult], tasks: list[str]) -> dict[str, float]:
    """Per task success (%) of one evaluation over the episodes that ran, and their mean as `avg`."""
    rates = {}
    for task in tasks:
        mine = [r.success for r in results if r.task == task and not r.is_lost]
        rates[task] = 100 * float(np.mean(mine)) if mine else float("nan")
    rates["avg"] = float(np.nanmean([rates[t] for t in tasks]))
    return rates


def summarize(repeats: list[list[EpisodeResult]], tasks: list[str]) -> dict[str, tuple[float, float]]:
    """(mean, sample std) over repeats of each task's success rate and of the average; the std is NaN after
    one repeat."""
    table = [success_rates(r, tasks) for r in repeats]
    spread = (lambda x: float(np.std(x, ddof=1))) if len(table) > 1 else (lambda x: float("nan"))
    return {k: (float(np.mean([t[k] for t in table])), spread([t[k] for t in table])) for k in table[0]}


def cell(mean: float, sd: float | None) -> str:
    """'mean ± sd', or the mean alone where there is no spread to show (one evaluation)."""
    return f"{mean:.1f}" if sd is None or np.isnan(sd) else f"{mean:.1f} ± {sd:.1f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def markdown(rows: dict[str, dict[str, tuple[float, float]]], tasks: list[str],
             sources: dict[str, str] | None = None) -> str:
    """Table 2 layout: method | Avg. Success | one column per task, and with `sources` where each row's figures
    come from and how many episodes they rest on."""
    head = ["Method", "Avg. Success", *tasks, *(["from"] if sources else [])]
    return table(head, [[method, *(cell(*stats[k]) for k in ["avg", *tasks]), *([sources[method]] if sources else [])]
                        for method, stats in rows.items()])


def failure_causes(results: list[EpisodeResult], tasks: list[str]) -> str | None:
    """Per task, the failed episodes counted by their cause (where the benchmark reads one from the rollout),
    as a Markdown table; None when no failure has a cause."""
    failed = [r for r in results if not r.success and not r.is_lost]
    causes = sorted({r.cause for r in failed if r.cause})
    if not causes:
        return None
    rows = [[task, str(sum(r.task == task for r in failed)),
             *(str(sum(r.task == task and r.cause == c for r in failed)) for c in causes)] for task in tasks]
    rows.append(["all", str(len(failed)), *(str(sum(r.cause == c for r in failed)) for c in causes)])
    return table(["Task", "failures", *causes], rows)


def write(repeats: list[list[EpisodeResult]], tasks: list[str], method: str, folder: Path
          ) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """episodes.csv, table.md, table.png (and failures.md where failures have causes) in `folder`; returns the
    summary and the episodes lost by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "episodes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["repeat", *asdict(EpisodeResult("", 0, False, 0.0, 0))])
        writer.writeheader()
        for r, results in enumerate(repeats):
            writer.writerows({"repeat": r, **asdict(e)} for e in results)
    stats = summarize(repeats, tasks)
    errors = error_counts([e for results in repeats for e in results])
    lost = ", ".join(f"{kind} {n}" for kind, n in errors.items()) or "none"
    (folder / "table.md").write_text(markdown({method: stats}, tasks) + f"\n\nEpisodes lost to errors: {lost}\n")
    causes = failure_causes([e for results in repeats for e in results], tasks)
    if causes:
        (folder / "failures.md").write_text(f"Failed episodes by cause, {method}\n\n{causes}\n")
    ran = {t: sum(e.task == t and not e.is_lost for results in repeats for e in results) for t in tasks}
    bar_chart({t: stats[t][0] for t in tasks}, folder / "table.png", f"{method}: success (%) over {len(repeats)} "
              "evaluation(s)", "success %", errors={t: np.nan_to_num(stats[t][1]) for t in tasks}, counts=ran)
    return stats, errors
