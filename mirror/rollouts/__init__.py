"""Running a policy in a simulator, for every benchmark: worker processes, the keyframe policy runner, episode
records, videos, and the callback that evaluates during training."""
