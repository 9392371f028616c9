"""Keyframe samples shared by the 3-D benchmarks (RLBench, Meta-World): records, world points, the cache,
the samples dataset and the data module base."""
