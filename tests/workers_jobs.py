"""Jobs for the rollout-pool tests; importable top-level functions, as spawned workers need.

The payload is JSON: `offset` is added to every job's value; with `dir`, each setup takes a numbered ticket
there, and setups from ticket `slow_from` on sleep `slow_s` seconds, from `fail_from` on raise, from
`abort_from` on kill the process (a simulator that dies while starting).
"""

import json
import os
import time
from pathlib import Path


def _ticket(folder: str) -> int:
    n = 0
    while True:
        try:
            os.close(os.open(Path(folder) / f"setup{n}", os.O_CREAT | os.O_EXCL))
            return n
        except FileExistsError:
            n += 1


def payload(offset: int, folder: str | None = None, **setups) -> bytes:
    return json.dumps({"offset": offset, "dir": folder, **setups}).encode()


def setup(payload: bytes) -> dict:
    spec = json.loads(payload.decode())
    if spec.get("dir"):
        ticket = _ticket(spec["dir"])
        if ticket >= spec.get("abort_from", 1 << 30):
            os.abort()
        if ticket >= spec.get("fail_from", 1 << 30):
            raise RuntimeError("cannot start the simulator")
        if ticket >= spec.get("slow_from", 1 << 30):
            time.sleep(spec["slow_s"])
    return spec


def run(state: dict, job: tuple[str, float]) -> float:
    kind, value = job
    if kind == "abort":
        os.abort()  # the worker dies like a segfaulting simulator
    if kind == "hang":
        time.sleep(3600)
    if kind == "sleep":
        time.sleep(value)
    if kind == "raise":
        raise RuntimeError("bad action")
    return value + state["offset"]
