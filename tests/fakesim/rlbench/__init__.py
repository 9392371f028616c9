"""A fake of the PerAct fork of RLBench (MohitShridhar/RLBench, branch peract, the commit in
tests/fakesim/real_api.json): the API `mirror.benchmarks.rlbench.env` uses, with the same signatures (checked against
that file by tests/test_rlbench_real.py) and the same behaviour on the paths it takes: stored demos chosen and
checked as `rlbench.utils.get_stored_demos` does, scenes restored from the demo's random state, planning
failures raised as InvalidActionError. The simulation itself is scripted (tests/fakesim/rlbench/backend/task.py).

Every stored demo loaded is appended to the file named by MIRROR_FAKESIM_LOG (if set), as `task episode rank pid`.
"""

import numpy as np
import pyrep

__version__ = "1.2.0"

if np.any(np.array(pyrep.__version__.split("."), dtype=int) < np.array([4, 1, 0, 2])):
    raise ImportError("PyRep version must be greater than 4.1.0.2. Please update PyRep.")

from rlbench.environment import Environment  # noqa: E402
from rlbench.observation_config import CameraConfig, ObservationConfig  # noqa: E402

__all__ = ["CameraConfig", "Environment", "ObservationConfig"]
