"""Worker operations for the tests only: the worker loads them when a test's client
asks (``ModelWorker(extra_ops=("worker_test_ops",))``); they never ship in ``OPS``."""

from __future__ import annotations

import os
import time
from typing import Generator

import numpy as np

from glassbox_xai.jobs import Progress


def op_sleep(state, seconds: float, steps: int = 10) -> Generator[Progress, None, dict]:
    """A job that only waits (progress and cancelling)."""
    for i in range(steps):
        time.sleep(seconds / steps)
        yield Progress(i + 1, steps, "sleeping")
    return {"slept": seconds}


def op_crash(state) -> Generator[Progress, None, dict]:
    """Ends the worker process abruptly (recovery from a crash)."""
    yield Progress(0, 1, "crashing")
    os._exit(3)


def op_lookup(state, table: dict, key: str) -> Generator[Progress, None, object]:
    """A KeyError raised inside an operation (must be reported as itself)."""
    yield Progress(0, 1, "looking up")
    return table[key]


def op_echo(state, payload=None, result_mb: float = 0.0) -> Generator[Progress, None, dict]:
    """Returns the size of what it got and ``result_mb`` megabytes back (a long send each way)."""
    yield Progress(0, 1, "returning")
    size = 0 if payload is None else int(np.asarray(payload).nbytes)
    return {"received": size, "data": np.ones(int(result_mb * 2**20), np.uint8)}


OPS = {"sleep": op_sleep, "crash": op_crash, "lookup": op_lookup, "echo": op_echo}
