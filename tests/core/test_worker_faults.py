"""The worker survives a kill -9 at every phase of a job: the job fails with the one
clear "stopped unexpectedly" error (never a BrokenPipeError or EOFError), and the
next job runs on a fresh worker. Two rounds of five phases: 10 faults.

Each phase is hit on purpose, not by luck of timing: the kill is made from the
client's own side at the moment that phase is under way (see each ``kill_*``).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from glassbox_xai.jobs import drive
from glassbox_xai.worker.client import ModelWorker, WorkerCrashed

TEST_OPS = ("worker_test_ops",)
PAYLOAD_MB = 64  # far more than a pipe buffer, so a send or a return is cut in the middle


def kill(worker: ModelWorker) -> None:
    os.kill(worker._process.pid, signal.SIGKILL)
    worker._process.join(timeout=10)


def kill_while_starting(worker: ModelWorker):
    """Kill as soon as the process exists, long before it has imported anything and said Ready."""
    worker.stop()
    seen = {}

    def watch() -> None:
        while (process := worker._process) is None or process.pid is None:
            time.sleep(0.001)
        seen["ready_before_kill"] = worker.pid is not None
        os.kill(process.pid, signal.SIGKILL)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with pytest.raises(WorkerCrashed, match="stopped unexpectedly"):
        drive(worker.run("echo"))
    watcher.join(timeout=10)
    assert seen == {"ready_before_kill": False}


class _KillBeforeSend:
    """The client's pipe end, which kills the worker just as a request is being sent."""

    def __init__(self, conn, worker):
        self._conn, self._worker = conn, worker

    def send_bytes(self, data) -> None:
        kill(self._worker)
        self._conn.send_bytes(data)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def kill_while_sending(worker: ModelWorker):
    worker.start()
    worker._conn = _KillBeforeSend(worker._conn, worker)
    with pytest.raises(WorkerCrashed, match="stopped unexpectedly"):
        drive(worker.run("echo", payload=np.ones(PAYLOAD_MB * 2**20, np.uint8)))


def kill_while_running(worker: ModelWorker):
    job = worker.run("sleep", seconds=30, steps=300)
    next(job)
    kill(worker)
    with pytest.raises(WorkerCrashed, match="stopped unexpectedly"):
        drive(job)


def kill_while_returning(worker: ModelWorker):
    """Kill once the first bytes of a large result are in the pipe (the rest cannot be)."""
    job = worker.run("echo", result_mb=PAYLOAD_MB)
    assert next(job).message == "returning"
    assert worker._conn.poll(60)
    kill(worker)
    with pytest.raises(WorkerCrashed, match="stopped unexpectedly"):
        drive(job)


def kill_while_idle(worker: ModelWorker):
    worker.start()
    kill(worker)  # the next job simply gets a fresh worker, with no error at all


PHASES = {"starting": kill_while_starting, "sending": kill_while_sending, "running": kill_while_running,
          "returning": kill_while_returning, "idle": kill_while_idle}


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = ModelWorker(log_file=tmp_path_factory.mktemp("logs") / "worker.log", extra_ops=TEST_OPS)
    yield w
    w.stop()


@pytest.mark.parametrize("round_", [1, 2])
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_kill_at_any_phase_is_survived_and_the_next_job_succeeds(worker, phase, round_):
    PHASES[phase](worker)
    assert not worker.alive
    assert drive(worker.run("echo", payload=np.arange(10)))["received"] == 80
    assert worker.alive
