"""Meta-World tasks as data (`instructions.yaml`): each task's instruction phrasings, the rule that splits its
episodes into variations by where the episode's object or goal was placed, and its twin.

A phrasing may hold slots, e.g. "reach the goal {height} on the {side}"; each slot is a split of one coordinate
of the object's or the goal's sampled position at a threshold, with a word for either side, e.g. `side` =
goal x at 0 -> left / right (x > 0 is the robot's right). Variation v of a task fills every slot; the first
phrasing is the instruction models train with, the second a paraphrase held out for recognition. A twin is the
task that starts from the same scene (drawer-open and drawer-close); its instruction names the other action.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from mirror.errors import ConfigError

INSTRUCTIONS = Path(__file__).with_name("instructions.yaml")
AXES = "xyz"
PLACES = ("object", "goal")


@dataclass(frozen=True)
class Split:
    """Coordinate `axis` of the `of` position (object or goal) below `at` -> words[0], else words[1]."""

    of: str
    axis: int
    at: float
    words: tuple[str, str]

    def side(self, place: Mapping[str, np.ndarray]) -> int:
        return int(place[self.of][self.axis] > self.at)


@dataclass(frozen=True)
class TaskText:
    task: str
    phrasings: tuple[str, ...]
    slots: tuple[tuple[str, Split], ...] = ()
    twin: str | None = None

    @property
    def count(self) -> int:
        """Number of variations (1 without slots)."""
        return 2 ** len(self.slots)

    def variation(self, place: Mapping[str, np.ndarray]) -> int:
        """The variation of an episode whose object and goal sit at `place['object']`, `place['goal']`."""
        v = 0
        for _, split in self.slots:
            v = 2 * v + split.side(place)
        return v

    def words(self, v: int) -> dict[str, str]:
        sides = itertools.product(*[range(2)] * len(self.slots))
        chosen = list(sides)[v]
        return {name: split.words[s] for (name, split), s in zip(self.slots, chosen, strict=True)}

    def texts(self, v: int, words: Mapping[str, str] | None = None) -> list[str]:
        """Variation v's phrasings, slots filled (with `words`, another variation's words: a twin's)."""
        fill = self.words(v) if words is None else words
        return [p.format(**{name: fill[name] for name, _ in self.slots}) for p in self.phrasings]


def _split(path: Path, key: str, spec) -> Split:
    if not isinstance(spec, Mapping) or set(spec) != {"of", "axis", "at", "words"}:
        raise ConfigError(f"{path}: '{key}' must give of, axis, at and words")
    words = spec["words"]
    if spec["of"] not in PLACES or spec["axis"] not in AXES or not isinstance(spec["at"], int | float) or \
            not (isinstance(words, Sequence) and len(words) == 2 and all(isinstance(w, str) for w in words)):
        raise ConfigError(f"{path}: '{key}': of is object or goal, axis x, y or z, at a number, words two strings")
    return Split(spec["of"], AXES.index(spec["axis"]), float(spec["at"]), (words[0], words[1]))


def _task(path: Path, task: str, entry) -> TaskText:
    if isinstance(entry, list):
        entry = {"say": entry}
    if not isinstance(entry, Mapping) or not set(entry) <= {"say", "vary", "twin"}:
        raise ConfigError(f"{path}: '{task}' must be a list of phrasings or a mapping of say, vary and twin")
    say = entry.get("say")
    if not (isinstance(say, list) and len(say) >= 2 and all(isinstance(s, str) for s in say)):
        raise ConfigError(f"{path}: '{task}.say' must list at least two phrasings (the instruction, a paraphrase)")
    slots = tuple((name, _split(path, f"{task}.vary.{name}", spec)) for name, spec in (entry.get("vary") or {}).items())
    for phrasing in say:
        used = {field for _, field, _, _ in string.Formatter().parse(phrasing) if field}
        if used != {name for name, _ in slots}:
            raise ConfigError(f"{path}: '{task}': phrasing '{phrasing}' must use exactly the slots "
                              f"{sorted(name for name, _ in slots)}")
    return TaskText(task, tuple(say), slots, entry.get("twin"))


@cache
def catalogue(path: Path = INSTRUCTIONS) -> dict[str, TaskText]:
    """Every task's text, checked: one line naming the file and the key for anything malformed."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the instructions ({err})") from None
    texts = {task: _task(path, task, entry) for task, entry in data.items()}
    for text in texts.values():
        twin = texts.get(text.twin) if text.twin else None
        if text.twin and (twin is None or twin.twin != text.task):
            raise ConfigError(f"{path}: '{text.task}.twin' must name a task whose twin is '{text.task}'")
    return texts


def task_text(task: str) -> TaskText:
    texts = catalogue()
    if task not in texts:
        raise ConfigError(f"{INSTRUCTIONS}: no instruction for '{task}'")
    return texts[task]


def variations(tasks: Sequence[str]) -> list[tuple[str, int]]:
    """Every (task, variation) of a suite, in order: the instruction index of the data."""
    return [(task, v) for task in tasks for v in range(task_text(task).count)]


def twin_texts(task: str, v: int) -> list[str]:
    """The twin's phrasings for variation v's scene (the same slot words where the twin has them)."""
    text = task_text(task)
    if text.twin is None:
        raise ConfigError(f"'{task}' has no twin in {INSTRUCTIONS}")
    twin = task_text(text.twin)
    words = text.words(v)
    return twin.texts(0, {name: words.get(name, "") for name, _ in twin.slots})
