"""A fake of PyRep's API surface that `mirror.envs.rlbench` uses, for tests without CoppeliaSim."""

__version__ = "4.1.0.3"
