"""Where a run's wall time went: setup (data and demonstrations, models), training, validation (rollouts
included) and the final report; printed when the run ends and kept in `<run>/phases.json`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

PHASES = ("setup (data, demos, models)", "training", "validation (with rollouts)", "final report")


def clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class PhaseTimes(Callback):
    """Wall time of each phase of one start of a run, measured from the moment it is created."""

    def __init__(self) -> None:
        self.began = self.mark = time.monotonic()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.current = self.resume_after_validation = PHASES[0]

    def _switch(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[self.current] += now - self.mark
        self.current, self.mark = phase, now

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._switch(PHASES[1])

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.resume_after_validation = self.current
        self._switch(PHASES[2])

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._switch(self.resume_after_validation)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._switch(PHASES[3])

    def finish(self, folder: Path, rank: int) -> str:
        """Close the current phase; rank 0 appends the times to `phases.json`. Returns the printed table."""
        self._switch(self.current)
        total = time.monotonic() - self.began
        if rank == 0:
            path = folder / "phases.json"
            starts = json.loads(path.read_text()) if path.is_file() else []
            starts.append({**{k: round(v, 3) for k, v in self.seconds.items()}, "total": round(total, 3)})
            path.write_text(json.dumps(starts, indent=1))
        width = max(map(len, PHASES))
        rows = [f"  {name:<{width}}  {clock(self.seconds[name]):>8}" for name in PHASES]
        return "\n".join(["wall time of this run:", *rows, f"  {'total':<{width}}  {clock(total):>8}"])
