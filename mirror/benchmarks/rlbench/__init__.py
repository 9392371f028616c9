"""RLBench: demonstrations in the PerAct on-disk format (reading, keyframes, samples, cache), the data module,
and CoppeliaSim rollouts through PyRep."""
