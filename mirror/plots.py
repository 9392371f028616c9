"""Figures people would rather see than read, saved as PNG (and logged to W&B by the caller)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def bar_chart(values: dict[str, float], path: Path, title: str, ylabel: str, errors: dict[str, float] | None = None,
              limit: tuple[float, float] | None = (0, 100)) -> Path:
    """One bar per key (e.g. success rate per task), with optional error bars."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.6))
    err = [errors[n] for n in names] if errors else None
    ax.bar(range(len(names)), [values[n] for n in names], yerr=err, capsize=3, color="#4C72B0")
    tilt = len(names) > 4
    ax.set_xticks(range(len(names)), names, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if limit:
        ax.set_ylim(*limit)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def scatter_2d(points: np.ndarray, colours: Sequence[int], markers: Sequence[str], path: Path, title: str,
               marker_labels: dict[str, str]) -> Path:
    """2-D embedding (e.g. t-SNE) with colour = class and marker = source."""
    fig, ax = plt.subplots(figsize=(6.5, 6))
    colours, markers = np.asarray(colours), np.asarray(markers)
    cmap = plt.get_cmap("tab20", max(2, int(colours.max()) + 1))
    for marker, label in marker_labels.items():
        sel = markers == marker
        ax.scatter(points[sel, 0], points[sel, 1], c=cmap(colours[sel]), marker=marker, s=22, alpha=0.8,
                   label=label, edgecolors="none")
    ax.legend(loc="best")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0, ha="right" if len(names) > 4
                  else "center")
    ax.set_ylabel("difference")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def learning_curves(steps: Sequence[int], series: dict[str, Sequence[Sequence[float]]], path: Path,
                    title: str) -> Path:
    """Success against the training step: per name (`avg` bold, tasks thin) the mean over runs, and for `avg`
    over several runs a band of one standard deviation."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, runs in series.items():
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
