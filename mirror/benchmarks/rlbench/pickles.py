"""A restricted unpickler for RLBench's `low_dim_obs.pkl`: a crafted pickle can never run code.

Only RLBench's Demo and Observation (mapped to the plain classes below) and numpy's array and scalar
reconstruction may appear; any other global is refused with an error that names it. Arrays are built only
through numpy's reconstruction, and their shape and dtype are checked before any memory is allocated: numeric
dtypes, at most `MAX_ARRAY_BYTES`, data that matches the shape.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray

MAX_ARRAY_BYTES = 1 << 28
NUMERIC_KINDS = "biufc"


class Observation:
    """One frame of a demonstration: gripper_pose (xyz + quaternion xyzw), gripper_open, joint_velocities,
    gripper_joint_positions, ignore_collisions, misc (camera extrinsics/intrinsics/near/far) and more."""


class Demo:
    """A demonstration: `_observations` (list of Observation), `random_seed`, `variation_number`."""

    def __len__(self) -> int:
        return len(self._observations)

    def __getitem__(self, i: int) -> Observation:
        return self._observations[i]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allowed RLBench/numpy classes, or describes a harmful array."""


def _check_dtype(dtype: object) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMERIC_KINDS:
        raise UnsafePickleError(f"refused array of dtype {dtype!r} (only numeric arrays are read)")
    return dtype


class SafeArray(np.ndarray):
    """What the pickle's `numpy.ndarray` stands for: it cannot be called, only filled by `__setstate__`, which
    checks the described array before numpy allocates it."""

    def __new__(cls, *args, **kwargs):
        raise UnsafePickleError("refused call of numpy.ndarray (arrays are only rebuilt by numpy's reconstruction)")

    def __setstate__(self, state: tuple) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise UnsafePickleError("refused array state of an unknown layout")
        _, shape, dtype, _, data = state
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise UnsafePickleError(f"refused array of shape {shape!r}")
        size = math.prod(shape) * _check_dtype(dtype).itemsize
        if size > MAX_ARRAY_BYTES:
            raise UnsafePickleError(f"refused array of shape {shape} ({size} bytes)")
        if not isinstance(data, bytes) or len(data) != size:
            raise UnsafePickleError(f"array data does not match its shape {shape} and dtype {dtype}")
        super().__setstate__(state)


def _reconstruct(subtype: type, shape: tuple, dtype: bytes) -> SafeArray:
    """numpy's first step of unpickling an array: an empty one, filled next by `SafeArray.__setstate__`."""
    if subtype is not SafeArray or shape != (0,):
        raise UnsafePickleError("refused array reconstruction with unexpected arguments")
    return _multiarray._reconstruct(SafeArray, (0,), dtype)


def _scalar(dtype: np.dtype, data: bytes = b"") -> np.generic:
    if not isinstance(data, bytes) or len(data) != _check_dtype(dtype).itemsize:
        raise UnsafePickleError(f"numpy scalar data does not match its dtype {dtype}")
    return _multiarray.scalar(dtype, data)


ALLOWED = {
    ("rlbench.demo", "Demo"): Demo,
    ("rlbench.backend.observation", "Observation"): Observation,
    ("numpy", "ndarray"): SafeArray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
}


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
