"""Figures people would rather see than read, saved as PNG (and logged to W&B by the caller)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    """Lay the figure out, write it as PNG (folders made) and free it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def bar_chart(values: dict[str, float], path: Path, title: str, ylabel: str, errors: dict[str, float] | None = None,
              limit: tuple[float, float] | None = (0, 100), counts: dict[str, int | str] | None = None) -> Path:
    """One bar per key (e.g. success rate per task) with its value written on it, optional error bars, and
    under each name what the value rests on (`counts`, e.g. episodes)."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.8))
    err = [errors[n] for n in names] if errors else None
    bars = ax.bar(range(len(names)), [values[n] for n in names], yerr=err, capsize=3, color="#4C72B0")
    digits = 1 if max((abs(v) for v in values.values()), default=0) > 1.5 else 3
    ax.bar_label(bars, labels=[f"{values[n]:.{digits}f}" for n in names], fontsize=7, padding=2)
    labels = [f"{n}\nn={counts[n]}" if counts and n in counts else n for n in names]
    tilt = len(names) > 4
    ax.set_xticks(range(len(names)), labels, rotation=45 if tilt else 0, ha="right" if tilt else "center",
                  fontsize=7 if tilt else 9)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if limit:
        ax.set_ylim(limit[0], limit[1] * 1.08)  # room for the values on full bars
    return _save(fig, path)


def palette(n: int) -> list:
    """n colours that tell classes apart: matplotlib's qualitative tables one after another (60 colours)."""
    colours = [c for name in ("tab20", "tab20b", "tab20c") for c in plt.get_cmap(name).colors]
    if n > len(colours):
        return [plt.get_cmap("turbo")(i / max(1, n - 1)) for i in range(n)]
    return colours[:n]


def scatter_2d(points: np.ndarray, colours: Sequence[int], markers: Sequence[str], path: Path, title: str,
               marker_labels: dict[str, str], class_names: Sequence[str] | None = None) -> Path:
    """2-D embedding (e.g. t-SNE) with colour = class and marker = source; with `class_names` (up to 60) a
    legend of the classes beside the plot."""
    colours, markers = np.asarray(colours), np.asarray(markers)
    n = max(int(colours.max()) + 1 if len(colours) else 1, len(class_names or ()))
    table = palette(n)
    named = class_names is not None and len(class_names) <= 60
    fig, ax = plt.subplots(figsize=(11.5 if named else 6.5, 6))
    for marker, label in marker_labels.items():
        sel = markers == marker
        ax.scatter(points[sel, 0], points[sel, 1], c=[table[c] for c in colours[sel]], marker=marker, s=22,
                   alpha=0.8, edgecolors="none")
        ax.scatter([], [], c="grey", marker=marker, label=label)
    first = ax.legend(loc="upper left", fontsize=8)
    if named:
        ax.add_artist(first)
        handles = [plt.Line2D([], [], marker="s", linestyle="", color=table[i], label=name)
                   for i, name in enumerate(class_names)]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6,
                  ncol=1 if len(class_names) <= 30 else 2, frameon=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def line_chart(x: Sequence[float], series: dict[str, Sequence[float]], path: Path, title: str, xlabel: str,
               ylabel: str, chance: float | None = None) -> Path:
    """Curves over training progress (e.g. alignment Recall@1 per checkpoint), with a chance line."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best")
    return _save(fig, path)


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> Path:
    """Counts of true (rows) against predicted (columns) classes, each row normalised to its share."""
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = max(5.0, 0.28 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("shown")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of the row")
    return _save(fig, path)


def difference_chart(differences: dict, path: Path, title: str) -> Path:
    """A difference (e.g. of success rates) per task with its 95% interval (`stats.Interval`s), zero marked."""
    names = list(differences)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(names) + 2), 3.8))
    means = np.array([differences[n].mean for n in names])
    lo = np.array([differences[n].mean - differences[n].lo for n in names])
    hi = np.array([differences[n].hi - differences[n].mean for n in names])
    colours = ["#55A868" if m > 0 else "#C44E52" for m in means]
    ax.bar(range(len(names)), means, yerr=np.nan_to_num(np.stack([lo, hi])), capsize=3, color=colours)
    ax.axhline(0, color="black", linewidth=0.8)
    labels = [f"{n}\n{m:+.1f}" for n, m in zip(names, means, strict=True)]
    tilt = len(names) > 4
    ax.set_xticks(range(len(names)), labels, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylabel("difference")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def learning_curves(steps: Sequence[int], series: dict[str, Sequence[Sequence[float]]], path: Path,
                    title: str) -> Path:
    """Success against the training step: per name (`avg` bold, tasks thin) the mean over runs, and for `avg`
    over several runs a band of one standard deviation."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    if len(series) == 2:  # one task: its line is the mean's
        series = {"avg": series["avg"]}
    for name, runs in sorted(series.items(), key=lambda item: item[0] == "avg"):  # the mean drawn last, on top
        values = np.asarray(runs, dtype=float)
        mean = np.nanmean(values, axis=0)
        bold = name == "avg"
        ax.plot(steps, mean, marker="o" if bold else None, linewidth=2.5 if bold else 1, alpha=1 if bold else 0.6,
                label="mean over tasks" if bold else name, color="black" if bold else None)
        if bold and len(values) > 1:
            sd = np.nanstd(values, axis=0, ddof=1)
            ax.fill_between(steps, mean - sd, mean + sd, color="grey", alpha=0.3, label="± 1 sd over runs")
    ax.set_xlabel("training step")
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=6, ncol=2)
    return _save(fig, path)


def training_curves(rows: list[dict[str, str]], path: Path, title: str, per_task: set[str] = frozenset()) -> Path:
    """A run's learning curves from its CSV log: training losses (smoothed over 10 logged steps), validation
    losses, validation scores in [0, 1] and rollout success (%), one panel each where the log has them; per-task
    series (a key ending in one of `per_task`) are left to the CSV and W&B."""

    def series(keep) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for key in sorted({k for row in rows for k in row if k != "step" and keep(k)}):
            if key.rsplit("/", 1)[-1] in per_task:
                continue
            points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
            if points:
                out[key] = tuple(np.asarray(v) for v in zip(*points, strict=True))
        return out

    panels = [("training losses (mean of 10 logs)", series(lambda k: k.startswith("train/loss")), True),
              ("validation losses", series(lambda k: k.startswith("val/") and "loss" in k), False),
              ("validation scores", series(lambda k: k.startswith("val/") and "loss" not in k
                                           and not k.endswith("_chance")), False),
              ("rollout success (%)", series(lambda k: k.startswith("rollout/success")), False)]
    panels = [p for p in panels if p[1]]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.6), squeeze=False)
    for ax, (name, curves, smooth) in zip(axes[0], panels, strict=False):
        for key, (x, y) in curves.items():
            if smooth and len(y) >= 10:
                y = np.convolve(y, np.ones(10) / 10, mode="valid")
                x = x[9:]
            ax.plot(x, y, marker=None if smooth or len(x) > 12 else "o", label=key, linewidth=1.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("training step")
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
