"""Long jobs (demonstrations, preprocessing, rollouts) with progress: a tqdm bar on a terminal, plain lines in a
log file (a bar's carriage returns would fill it); and a helper that runs jobs in spawned worker processes."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from tqdm import tqdm


class Progress:
    """Counts `total` units of work done: a bar on a terminal, else a line at every tenth of the way."""

    def __init__(self, total: int, desc: str, unit: str = "ep"):
        self.total, self.desc, self.unit = total, desc, unit
        self.bar = tqdm(total=total, desc=desc, unit=unit, smoothing=0.1) if sys.stderr.isatty() else None
        self.done, self.shown, self.start = 0, 0, time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        tenth = self.done * 10 // max(1, self.total)
        if tenth > self.shown or self.done == self.total:
            self.shown = tenth
            elapsed = time.monotonic() - self.start
            left = elapsed / self.done * (self.total - self.done)
            print(f"{self.desc}: {self.done}/{self.total} {self.unit} | {elapsed:.0f} s | about {left:.0f} s left",
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress(items: Iterable, total: int, desc: str, unit: str = "ep") -> Iterator:
    """Yield `items`, showing progress."""
    shown = Progress(total, desc, unit)
    try:
        for item in items:
            yield item
            shown.update()
    finally:
        shown.close()


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence, workers: int, desc: str, chunksize: int = 1) -> list:
    """`fn` of every job, in order: in `workers` spawned processes when there are several jobs, else here."""
    if not jobs:
        return []
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            return list(progress(pool.imap(fn, jobs, chunksize=chunksize), len(jobs), desc))
    return [fn(job) for job in progress(jobs, len(jobs), desc)]
