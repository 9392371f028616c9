"""A restricted unpickler for RLBench's `low_dim_obs.pkl`: a crafted pickle can never run code.

Only RLBench's Demo and Observation (mapped to the plain classes below) and numpy's array and scalar
reconstruction may appear; any other global is refused with an error that names it.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray


class Observation:
    """One frame of a demonstration: gripper_pose (xyz + quaternion xyzw), gripper_open, joint_velocities,
    gripper_joint_positions, ignore_collisions, misc (camera extrinsics/intrinsics/near/far) and more."""


class Demo:
    """A demonstration: `_observations` (list of Observation), `random_seed`, `variation_number`."""

    def __len__(self) -> int:
        return len(self._observations)

    def __getitem__(self, i: int) -> Observation:
        return self._observations[i]


ALLOWED = {
    ("rlbench.demo", "Demo"): Demo,
    ("rlbench.backend.observation", "Observation"): Observation,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allowed RLBench/numpy classes."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global '{module}.{name}'") from None


def load(path: str | Path):
    """Unpickle an RLBench file (Demo, descriptions list, variation int) with the restricted unpickler."""
    data = Path(path).read_bytes()
    return RestrictedUnpickler(io.BytesIO(data)).load()
