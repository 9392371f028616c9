"""Rollout workers: each environment runs in its own process, and a crash or a hang costs one job only.

Workers live across evaluations; each evaluation first sends them a payload (policy weights as bytes),
then jobs one at a time. If a worker dies (segfault, abort) or a job runs past its time-out, the job is
recorded as an error, the worker is killed and replaced, and the remaining jobs go on: the training
process never dies with a simulator.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


@dataclass
class JobError:
    """A job that did not return a result: `kind` is crash, timeout or exception."""

    kind: str
    detail: str


def _serve(conn: Connection, setup: Callable[[bytes], Any], run: Callable[[Any, Any], Any]) -> None:
    state = None
    while True:
        try:
            kind, body = conn.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        try:
            if kind == "setup":
                state = setup(body)
                conn.send(("ok", None))
            else:
                conn.send(("ok", run(state, body)))
        except Exception as err:  # a Python error inside the job: report it and keep serving
            conn.send(("exception", f"{type(err).__name__}: {err}"))


class _Worker:
    def __init__(self, ctx, setup, run):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, setup, run), daemon=True)
        self.process.start()
        child.close()
        self.job = -1
        self.started = 0.0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


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
        self.workers: list[_Worker] = []
        self.restarts = 0

    def _load(self, worker: _Worker, payload: bytes) -> bool:
        """Send the payload; True when the worker acknowledged it in time."""
        try:
            worker.conn.send(("setup", payload))
            if worker.conn.poll(self.setup_timeout):
                status, detail = worker.conn.recv()
                if status == "ok":
                    return True
                raise RuntimeError(f"rollout worker setup failed: {detail}")
        except (EOFError, OSError):
            pass
        return False

    def _ready(self, worker: _Worker | None, payload: bytes) -> _Worker:
        """`worker` loaded with the payload, or a fresh one in its place."""
        if worker is not None:
            if worker.process.is_alive() and self._load(worker, payload):
                return worker
            worker.kill()
            self.restarts += 1
        fresh = _Worker(self.ctx, self.setup, self.run_job)
        if not self._load(fresh, payload):
            fresh.kill()
            raise RuntimeError(f"a fresh rollout worker did not start within {self.setup_timeout:.0f} s")
        return fresh

    def map(self, payload: bytes, jobs: Sequence[Any]) -> list[Any]:
        """Results of `jobs` in order; a job whose worker crashed or hung gives a `JobError`."""
        needed = min(self.size, len(jobs))
        for w in self.workers[needed:]:
            w.kill()
        old = self.workers[:needed] + [None] * (needed - len(self.workers[:needed]))
        self.workers = [self._ready(w, payload) for w in old]
        results: list[Any] = [None] * len(jobs)
        pending = list(range(len(jobs)))[::-1]
        busy: dict[Connection, _Worker] = {}

        def assign(worker: _Worker) -> None:
            if pending:
                worker.job, worker.started = pending.pop(), time.monotonic()
                worker.conn.send(("job", jobs[worker.job]))
                busy[worker.conn] = worker

        def replace(worker: _Worker) -> _Worker:
            i = self.workers.index(worker)
            worker.kill()
            self.restarts += 1
            self.workers[i] = self._ready(None, payload)
            return self.workers[i]

        for w in self.workers:
            assign(w)
        while busy:
            for conn in wait(list(busy), timeout=self._wait_time(busy.values())):
                worker = busy.pop(conn)
                try:
                    status, value = conn.recv()
                    results[worker.job] = value if status == "ok" else JobError("exception", value)
                except (EOFError, OSError):
                    worker.process.join(timeout=5)
                    results[worker.job] = JobError("crash", f"worker exited with code {worker.process.exitcode}")
                    worker = replace(worker)
                assign(worker)
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if self.timeout is not None and now - worker.started > self.timeout:
                    busy.pop(conn)
                    results[worker.job] = JobError("timeout", f"no result within {self.timeout:.0f} s")
                    assign(replace(worker))
        return results

    def _wait_time(self, workers) -> float | None:
        if self.timeout is None:
            return None
        now = time.monotonic()
        return max(0.01, min(w.started + self.timeout - now for w in workers))

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(("stop", None))
                w.process.join(timeout=5)
            except (BrokenPipeError, OSError):
                pass
            w.kill()
        self.workers = []
