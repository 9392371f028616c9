"""Jobs for the rollout-pool tests; importable top-level functions, as spawned workers need."""

import os
import time


def setup(payload: bytes) -> dict:
    return {"offset": int(payload.decode())}


def run(state: dict, job: tuple[str, int]) -> int:
    kind, value = job
    if kind == "abort":
        os.abort()  # the worker dies like a segfaulting simulator
    if kind == "hang":
        time.sleep(3600)
    if kind == "raise":
        raise RuntimeError("bad action")
    return value + state["offset"]
