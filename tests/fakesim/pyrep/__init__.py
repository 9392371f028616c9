"""A fake of PyRep 4.1 (stepjam/PyRep, the commit in real_api.json): the classes `mirror.benchmarks.rlbench.env` and the
fake RLBench use, for tests without CoppeliaSim."""

__version__ = "4.1.0.3"
