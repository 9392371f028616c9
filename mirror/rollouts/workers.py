"""Rollout workers: each environment runs in its own process, and a crash or a hang costs one job only.

Workers live across evaluations; each evaluation first sends them a payload (policy weights as bytes),
then jobs one at a time. The pool never blocks on one worker: setups and replacements proceed while the
others work, results already sent are collected before any deadline is judged, and a job's deadline runs
from the worker's own acknowledgement that it started it. A worker that dies or overruns costs its job
(`crash`, `timeout`); one that cannot be set up is retried with a bounded back-off, and only when no
worker can be set up do the remaining jobs fail (`setup`, with the reason). The caller never sees an
exception from a simulator.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

SETUP_ATTEMPTS = 3  # per worker slot and evaluation, before its jobs go to the other workers or fail
BACKOFF_S = (1.0, 30.0)  # first and largest wait before a failed setup is retried (doubling)


@dataclass
class JobError:
    """A job that did not return a result: `kind` is crash, timeout, exception or setup."""

    kind: str
    detail: str


def _serve(conn: Connection, setup: Callable[[bytes], Any], run: Callable[[Any, Any], Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the training process, which stops cleanly
    state = None
    while True:
        try:
            kind, body = conn.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        if kind == "setup":
            try:
                state = setup(body)
                conn.send(("ready", None))
            except Exception as err:
                conn.send(("setup_failed", f"{type(err).__name__}: {err}"))
            continue
        conn.send(("started", time.monotonic()))  # CLOCK_MONOTONIC: one clock for all processes of a machine
        try:
            conn.send(("done", run(state, body)))
        except Exception as err:  # a Python error inside the job: report it and keep serving
            conn.send(("exception", f"{type(err).__name__}: {err}"))


class _Worker:
    """One process and what the pool knows of it: setting up, idle, or busy with job `job` until `deadline`."""

    def __init__(self, ctx, setup, run, payload: bytes, setup_timeout: float):
        self.conn, child = ctx.Pipe()
        self.sending = threading.Lock()  # a message longer than the pipe goes out in pieces: never two at once
        self.sender: threading.Thread | None = None
        self.process = ctx.Process(target=_serve, args=(child, setup, run), daemon=True)
        self.process.start()
        child.close()
        self.load(payload, setup_timeout)

    def load(self, payload: bytes, setup_timeout: float) -> None:
        """Send a payload from a thread: a large one would block until the new process reads it."""
        self.state, self.job = "setup", -1
        self.deadline = time.monotonic() + setup_timeout
        self.sender = threading.Thread(target=self._send, args=(("setup", payload),), daemon=True)
        self.sender.start()

    def idle(self) -> None:
        self.state, self.job, self.deadline = "idle", -1, float("inf")

    def _send(self, message: tuple) -> None:
        try:
            with self.sending:
                self.conn.send(message)
        except OSError:  # the process died; its end of the pipe reports it
            pass

    def kill(self) -> None:
        """End the process; the pipe closes only once a payload still going out has stopped (it fails at once
        when the reader is gone), so that no late write lands in a pipe that reuses its file descriptor."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        if self.sender is not None:
            self.sender.join(timeout=5)
        self.conn.close()


@dataclass
class _Slot:
    """A place for one worker; after failed setups it waits `retry_at` before the next try."""

    worker: _Worker | None = None
    failures: int = 0
    retry_at: float = 0.0
    reason: str = ""


class RolloutPool:
    """Up to `workers` processes that run `run(state, job)` after `state = setup(payload)`.

    `setup` and `run` must be importable top-level functions: workers are spawned, not forked, so that no
    simulator or thread-pool state leaks in from the training process.
    """

    def __init__(self, workers: int, setup: Callable[[bytes], Any], run: Callable[[Any, Any], Any],
                 timeout: float | None = None, setup_timeout: float = 600.0):
        self.size, self.setup, self.run_job = max(1, workers), setup, run
        self.timeout, self.setup_timeout = timeout, setup_timeout
        self.ctx = mp.get_context("spawn")
        self.slots: list[_Slot] = []
        self.restarts = 0

    def _start(self, slot: _Slot, payload: bytes) -> None:
        slot.worker = _Worker(self.ctx, self.setup, self.run_job, payload, self.setup_timeout)

    def _drop(self, slot: _Slot) -> None:
        slot.worker.kill()
        slot.worker = None

    def _replace(self, slot: _Slot, payload: bytes, finish: Callable, error: JobError) -> None:
        """The slot's busy worker is lost: its job ends with `error` and a fresh worker takes the slot."""
        finish(slot.worker, error)
        self._drop(slot)
        self.restarts += 1
        self._start(slot, payload)

    def _setup_failed(self, slot: _Slot, reason: str) -> None:
        self._drop(slot)
        slot.failures += 1
        slot.reason = reason
        slot.retry_at = time.monotonic() + min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** (slot.failures - 1))

    def map(self, payload: bytes, jobs: Sequence[Any], done: Callable[[], None] = lambda: None) -> list[Any]:
        """Results of `jobs` in order; a job that did not return gives a `JobError`. `done` is called as each
        job ends (to show progress)."""
        needed = min(self.size, len(jobs))
        for slot in self.slots[needed:]:
            if slot.worker is not None:
                self._drop(slot)
        self.slots = self.slots[:needed] + [_Slot() for _ in range(needed - len(self.slots))]
        for slot in self.slots:
            slot.failures, slot.retry_at = 0, 0.0
            if slot.worker is not None and slot.worker.state == "idle" and slot.worker.process.is_alive():
                slot.worker.load(payload, self.setup_timeout)
                continue
            if slot.worker is not None:  # dead, or still setting up with an older payload
                self._drop(slot)
            self._start(slot, payload)
        results: list[Any] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        left = len(jobs)

        def finish(worker: _Worker, value: Any) -> None:
            nonlocal left
            results[worker.job] = value
            left -= 1
            worker.idle()
            done()

        def assign(worker: _Worker) -> None:
            if pending and worker.state == "idle":
                worker.job = pending.popleft()
                worker.state = "busy"
                worker.deadline = time.monotonic() + self.timeout if self.timeout is not None else float("inf")
                worker._send(("job", jobs[worker.job]))

        while left:
            live = [s for s in self.slots if s.worker is not None]
            waitables = [s.worker.conn for s in live] + [s.worker.process.sentinel for s in live]
            wait(waitables, timeout=self._wait_time(live))
            for slot in live:  # collect everything already sent before judging any deadline
                self._collect(slot, payload, finish, assign)
            now = time.monotonic()
            for slot in self.slots:
                w = slot.worker
                if w is not None and w.deadline <= now:
                    if w.state == "busy":
                        self._replace(slot, payload, finish, JobError("timeout", f"no result within "
                                                                      f"{self.timeout:.0f} s of its start"))
                    elif w.state == "setup":
                        self._setup_failed(slot, f"setup did not finish within {self.setup_timeout:.0f} s")
                elif w is None and slot.failures < SETUP_ATTEMPTS and slot.retry_at <= now:
                    self.restarts += 1
                    self._start(slot, payload)
            if all(s.worker is None and s.failures >= SETUP_ATTEMPTS for s in self.slots):
                reason = "; ".join(dict.fromkeys(s.reason for s in self.slots))
                while pending:
                    results[pending.popleft()] = JobError("setup", f"no rollout worker could be set up: {reason}")
                    left -= 1
            for slot in self.slots:
                if slot.worker is not None:
                    assign(slot.worker)
        return results

    def _collect(self, slot: _Slot, payload: bytes, finish, assign) -> None:
        """Read every message the slot's worker has sent; a dead worker costs its job or its setup."""
        w = slot.worker
        try:
            while w.conn.poll():
                kind, value = w.conn.recv()
                if kind == "ready":
                    w.idle()
                    slot.failures = 0
                elif kind == "setup_failed":
                    self._setup_failed(slot, value)
                    return
                elif kind == "started" and self.timeout is not None:
                    w.deadline = value + self.timeout
                elif kind == "done":
                    finish(w, value)
                elif kind == "exception":
                    finish(w, JobError("exception", value))
                assign(w)
        except (EOFError, OSError):
            w.process.join(timeout=5)
            code = w.process.exitcode
            if w.state == "busy":
                self._replace(slot, payload, finish, JobError("crash", f"worker exited with code {code}"))
            else:
                self._setup_failed(slot, f"worker exited with code {code} during setup")

    def _wait_time(self, live: list[_Slot]) -> float | None:
        """Until the next deadline or retry; None (wait for a message) when nothing is timed."""
        times = [s.worker.deadline for s in live]
        times += [s.retry_at for s in self.slots if s.worker is None and s.failures < SETUP_ATTEMPTS]
        finite = [t for t in times if t != float("inf")]
        return max(0.0, min(finite) - time.monotonic()) if finite else None

    def close(self) -> None:
        for slot in self.slots:
            w = slot.worker
            if w is None:
                continue
            if w.state != "setup":  # one still setting up may never read its payload: it is killed
                w._send(("stop", None))
                w.process.join(timeout=5)
            w.kill()
        self.slots = []
