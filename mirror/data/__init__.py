"""The data machinery every benchmark shares: the base data module and samplers, clip frames, seeds, folders,
and the keyframe cache, samples and data module base of the 3-D benchmarks."""
