"""The rollout pool survives crashing, hanging and failing jobs, and finishes the rest."""

from mirror.envs.workers import JobError, RolloutPool
from tests import workers_jobs


def test_crash_hang_and_exception_are_recorded_and_the_rest_runs():
    pool = RolloutPool(2, workers_jobs.setup, workers_jobs.run, timeout=5)
    try:
        jobs = [("ok", 1), ("abort", 0), ("ok", 2), ("hang", 0), ("ok", 3), ("raise", 0), ("ok", 4)]
        results = pool.map(b"10", jobs)
        assert results[0] == 11 and results[2] == 12 and results[4] == 13 and results[6] == 14
        assert isinstance(results[1], JobError) and results[1].kind == "crash"
        assert isinstance(results[3], JobError) and results[3].kind == "timeout"
        assert isinstance(results[5], JobError) and results[5].kind == "exception" and "bad action" in results[5].detail
        assert pool.restarts == 2
        assert pool.map(b"100", [("ok", 1), ("ok", 2)]) == [101, 102]  # workers are reused with a new payload
    finally:
        pool.close()
