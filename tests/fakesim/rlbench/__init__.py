"""A fake of the PerAct fork of RLBench: the API surface `mirror.envs.rlbench` uses, with scripted tasks.

Every episode run is appended to the file named by MIRROR_FAKESIM_LOG (if set), as `task episode rank pid`.
"""

from rlbench.environment import Environment
from rlbench.observation_config import CameraConfig, ObservationConfig

__all__ = ["CameraConfig", "Environment", "ObservationConfig"]
