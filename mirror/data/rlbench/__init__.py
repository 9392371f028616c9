"""RLBench demonstrations in the PerAct on-disk format: reading, keyframes, samples, cache, data module."""
