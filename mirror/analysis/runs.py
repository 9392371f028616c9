"""What a run directory holds for a report: its evaluation, validation records and summary, each chosen by the
training step it belongs to and what it evaluated, never by file time (a copied run reports the same).

The evaluation is the full one (every task, each episode's own instruction) of the latest checkpoint step,
the one with the most episodes at that step, or the one the user names; every other is listed as skipped.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from mirror.errors import ConfigError, MirrorError

Item = tuple[str, int]  # (task, scene seed) or (task, clip)
HEADLINE = {"val/u/recognition": "recognition top-1 (val)", "val/align/recall1": "alignment Recall@1 (val)"}


@dataclass
class Evaluation:
    """One `mirror eval` folder: the step of the checkpoint it evaluated (-1 unknown), episodes per task and
    repeats behind its success figures, whether it covered every task with their own instructions, and what
    its episodes were told (`instruction`, `twin`, `paraphrase`)."""

    folder: Path
    data: dict
    step: int
    episodes: int | None
    repeats: int
    full: bool
    told: str

    @property
    def scale(self) -> int:
        return (self.episodes or 0) * self.repeats

    def describe(self) -> str:
        step = f"step {self.step}" if self.step >= 0 else "step unknown"
        rests = f", {self.episodes} episodes x {self.repeats} repeat(s) per task" if self.episodes else ""
        kind = "" if self.full else f", {self.told} instructions" if self.told != "instruction" \
            else ", a subset of the tasks"
        return f"{self.folder.parent.parent.name}/eval/{self.folder.name} ({step}{rests}{kind})"


def _step_of(name: str) -> int:
    match = re.search(r"step(\d+)", name)
    return int(match.group(1)) if match else -1


def evaluations(path: Path) -> list[Evaluation]:
    """Every evaluation of a run; older ones without recorded settings are read from their folder and files."""
    found = []
    for metrics in sorted(path.glob("eval/*/metrics.json")):
        data = json.loads(metrics.read_text())
        folder = metrics.parent
        request = data.get("request", {})
        twin = request.get("twin", folder.name.endswith("_twin"))
        told = request.get("told", "twin" if twin else "instruction")
        step = data.get("step")
        repeats = data.get("repeats", 1)
        episodes = data.get("episodes")
        if episodes is None and (folder / "episodes.csv").is_file():
            rows = _rows(folder / "episodes.csv")
            tasks = {r["task"] for r in rows}
            episodes = len(rows) // max(1, repeats * len(tasks)) if rows else None
        full = told == "instruction" and request.get("tasks", ["all"]) == ["all"] \
            and ("success" in data or "metrics" in data)
        found.append(Evaluation(folder, data, _step_of(folder.name) if step is None else step, episodes, repeats,
                                full, told))
    return found


def choose(found: list[Evaluation], named: str | None = None) -> tuple[Evaluation | None, dict[str, Evaluation]]:
    """The evaluation a report uses (the named folder, else the full one of the latest step with the most
    episodes) and, by what their episodes were told, the twin and paraphrase evaluations of the same step (else
    the latest)."""
    if named is not None:
        chosen = next((e for e in found if e.folder.name == named), None)
        if chosen is None and found:
            raise ConfigError(f"--eval {named}: {found[0].folder.parent} has no such evaluation; it has "
                              f"{', '.join(e.folder.name for e in found)}")
    else:
        full = [e for e in found if e.full and "success" in e.data] or [e for e in found if e.full]
        chosen = max(full, key=lambda e: (e.step, e.scale), default=None)
    others = {}
    for told in ("twin", "paraphrase"):
        told_so = [e for e in found if e.told == told]
        if told_so:
            others[told] = max(told_so, key=lambda e: (chosen is not None and e.step == chosen.step, e.step, e.scale))
    return chosen, others


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
    paraphrase: dict[str, float] = field(default_factory=dict)  # task or "avg" -> success told the paraphrase
    curve: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> task or "avg" -> success (%)
    lost: int = 0  # test episodes lost to errors (left out of `scenes`)
    source: str = ""  # where the success figures come from, and how many episodes they rest on
    skipped: list[str] = field(default_factory=list)  # evaluations not used, and why

    @property
    def group(self) -> str:
        return re.sub(r"-seed\d+$", "", self.name)


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


def _use_evaluation(record: RunRecord, chosen: Evaluation) -> None:
    data, folder = chosen.data, chosen.folder
    record.metrics = data.get("metrics", {})
    record.success = {t: (v["mean"], np.nan if v["std"] is None else v["std"])
                      for t, v in data.get("success", {}).items()}
    if record.success:
        record.source = chosen.describe()
    if (folder / "episodes.csv").is_file():
        episodes = _rows(folder / "episodes.csv")
        record.scenes = per_item(episodes, "seed", "success")
        record.lost = sum(map(lost, episodes))
    if (folder / "recognition.csv").is_file():
        rows = [r for r in _rows(folder / "recognition.csv")
                if r["phrasing"] == "instruction" and float(r["span"]) == 1.0]
        record.clips = per_item(rows, "clip", "correct")


def _use_validation(record: RunRecord, path: Path) -> None:
    """The rollout curve of every validation record, and the last record's figures where no evaluation gave
    them (its rollouts are tuning data: said so in `source`)."""
    records = {int(p.stem.removeprefix("step")): json.loads(p.read_text()) for p in path.glob("validation/step*.json")}
    for step, values in sorted(records.items()):
        rates = {k.removeprefix("rollout/success").lstrip("/") or "avg": v
                 for k, v in values.items() if k.startswith("rollout/success")}
        if rates:
            record.curve[step] = rates
    if not records:
        return
    last_step = max(records)
    last = records[last_step]
    if not record.metrics:
        record.metrics = last
    rates = {k.removeprefix("rollout/success/"): v for k, v in last.items() if k.startswith("rollout/success/")}
    if rates and not record.success:
        record.success = {**{t: (v, np.nan) for t, v in rates.items()}, "avg": (float(np.mean(list(rates.values()))),
                                                                           np.nan)}
        per_task = last.get("rollout/episodes", 0) / len(rates)
        record.source = (f"{path.name}/validation/step{last_step:07d}.json (validation rollouts, {per_task:g} "
                         "episodes per task, no `mirror eval`)")


def read_run(path: str | Path, named: str | None = None) -> RunRecord:
    """A run directory's figures; `named` picks its evaluation folder (`eval/NAME`)."""
    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise MirrorError(f"{path}: not a run directory (no config.yaml)")
    config = yaml.safe_load((path / "config.yaml").read_text())
    record = RunRecord(path, config["run"]["name"], config)
    found = evaluations(path)
    chosen, others = choose(found, named)
    if chosen is not None:
        _use_evaluation(record, chosen)
    told = {kind: {t: v["mean"] for t, v in e.data.get("success", {}).items()} for kind, e in others.items()}
    record.twin, record.paraphrase = told.get("twin", {}), told.get("paraphrase", {})
    used = [chosen, *others.values()]
    record.skipped = [e.describe() for e in found if all(e is not u for u in used)]
    _use_validation(record, path)
    if (path / "summary.json").is_file():
        rows = json.loads((path / "summary.json").read_text())["summary"]
        record.summary = {name: v for name, v, _ in rows if v is not None}
    record.summary.update(headline(record))
    return record


TOLD = {"paraphrase": "success rate mean, told the held-out paraphrases (%)",
        "twin": "success rate mean, told the twin task's instruction (%)"}


def clip_measure(kind: str, span: float) -> str:
    """The name of a run's recognition top-1 of its test clips told `kind` (instruction, paraphrase) after the
    first `span` of each clip."""
    return f"recognition top-1, {kind}s, first {span:.0%} of the clip (test)"


def test_measures(record: RunRecord) -> dict[str, float]:
    """A run's mean success told the paraphrases or the twins' instructions, and its recognition of the test
    clips (instructions at each clip span, paraphrases)."""
    out = {TOLD[kind]: told["avg"] for kind, told in (("paraphrase", record.paraphrase), ("twin", record.twin))
           if "avg" in told}
    for key, value in record.metrics.items():
        if key.startswith("recognition/") and key.count("/") == 1:
            kind, span = key.removeprefix("recognition/").split("@")
            out[clip_measure(kind, float(span))] = value
    return out


def headline(record: RunRecord) -> dict[str, float]:
    """What runs are compared by over seeds: success on the test scenes (mean over tasks, then per task), the
    `test_measures`, recognition of the validation clips and alignment Recall@1 on the validation data."""
    out = {f"success rate {'mean' if task == 'avg' else task} (%)": mean
           for task, (mean, _) in sorted(record.success.items(), key=lambda item: item[0] != "avg")}
    out.update(test_measures(record))
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


def groups(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    out: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        out[r.group].append(r)
    return dict(out)
