"""The rollout pool survives crashing, hanging and failing jobs and workers, and finishes the rest."""

import multiprocessing as mp

from mirror.rollouts.workers import JobError, RolloutPool, _Worker
from tests import workers_jobs
from tests.workers_jobs import payload


def test_crash_hang_and_exception_are_recorded_and_the_rest_runs():
    pool = RolloutPool(2, workers_jobs.setup, workers_jobs.run, timeout=5)
    try:
        jobs = [("ok", 1), ("abort", 0), ("ok", 2), ("hang", 0), ("ok", 3), ("raise", 0), ("ok", 4)]
        results = pool.map(payload(10), jobs)
        assert results[0] == 11 and results[2] == 12 and results[4] == 13 and results[6] == 14
        assert isinstance(results[1], JobError) and results[1].kind == "crash"
        assert isinstance(results[3], JobError) and results[3].kind == "timeout"
        assert isinstance(results[5], JobError) and results[5].kind == "exception" and "bad action" in results[5].detail
        assert pool.restarts == 2
        assert pool.map(payload(100), [("ok", 1), ("ok", 2)]) == [101, 102]  # workers are reused with a new payload
    finally:
        pool.close()


def test_a_slow_replacement_never_turns_a_finished_job_into_a_timeout(tmp_path):
    """A 0.2 s job beside a crash whose replacement takes 3 s to start, timeout 2 s: the job's result counts.
    (The pool used to block on the replacement, then judge the finished job by the time it was sent.)"""
    pool = RolloutPool(2, workers_jobs.setup, workers_jobs.run, timeout=2)
    try:
        results = pool.map(payload(10, str(tmp_path), slow_from=2, slow_s=3), [("sleep", 0.2), ("abort", 0)])
        assert results[0] == 10.2
        assert isinstance(results[1], JobError) and results[1].kind == "crash"
    finally:
        pool.close()


def test_a_replacement_that_cannot_start_costs_nothing_while_another_worker_runs(tmp_path):
    pool = RolloutPool(2, workers_jobs.setup, workers_jobs.run)
    try:
        jobs = [("abort", 0), ("sleep", 0.5)] + [("ok", i) for i in range(6)]
        results = pool.map(payload(0, str(tmp_path), fail_from=2), jobs)
        assert isinstance(results[0], JobError) and results[0].kind == "crash"
        assert results[1:] == [0.5, 0, 1, 2, 3, 4, 5]
    finally:
        pool.close()


def test_when_no_worker_can_start_the_jobs_fail_with_the_reason(tmp_path):
    pool = RolloutPool(2, workers_jobs.setup, workers_jobs.run)
    try:
        results = pool.map(payload(0, str(tmp_path), fail_from=0), [("ok", i) for i in range(3)])
        assert all(isinstance(r, JobError) and r.kind == "setup" for r in results)
        assert "RuntimeError: cannot start the simulator" in results[0].detail
        assert len(list(tmp_path.iterdir())) == 2 * 3  # each slot tried three times, with back-off
    finally:
        pool.close()


def test_a_worker_dying_during_setup_is_reported_at_once(tmp_path):
    pool = RolloutPool(1, workers_jobs.setup, workers_jobs.run, setup_timeout=3600)
    try:
        results = pool.map(payload(0, str(tmp_path), abort_from=0), [("ok", 1)])
        assert results[0].kind == "setup" and "exited with code -6 during setup" in results[0].detail
    finally:
        pool.close()


def test_a_message_sent_while_a_large_payload_is_still_going_out_never_cuts_into_it():
    """The payload (larger than a pipe holds) goes out from a thread while the new worker starts; a message sent
    meanwhile must follow it whole, else the worker reads garbage (an UnpicklingError in its `recv`)."""
    for _ in range(3):
        worker = _Worker(mp.get_context("spawn"), workers_jobs.setup, workers_jobs.run,
                         payload(0, pad="x" * 16_000_000), setup_timeout=600)
        worker._send(("stop", None))
        worker.process.join(timeout=120)
        code = worker.process.exitcode
        worker.kill()
        assert code == 0, f"the worker exited with {code}"
