"""The napari side of the model worker: a persistent, spawned process.

It starts when a job first needs it, is reused between jobs, and is started again
if it died. ``run`` is a generator (progress in, result out) meant for a napari
``thread_worker``; it never imports TensorFlow in the calling process. Cancel
stops the job at its next progress step, or kills the worker after a grace
period if the job does not get there (the next job starts a fresh one).
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import threading
from typing import Any, Generator

from ..inference import Progress

GRACE_SECONDS = 2.0


class WorkerError(Exception):
    """A job failed in the worker; ``kind`` names the exception type there.

    Not a RuntimeError: superqt treats a RuntimeError from a thread worker as a
    deleted worker and drops it without emitting ``errored`` or ``finished``.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class WorkerCrashed(WorkerError):
    """The worker process died during a job (a crash, or out of memory)."""


class JobCancelled(WorkerError):
    """The job was cancelled by the user."""


class ModelWorker:
    """A persistent worker process running model jobs one at a time."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._conn = None
        self._cancel = self._ctx.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.device: str | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the worker process if it is not running."""
        if self.alive:
            return
        from .server import serve

        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=serve, args=(child, self._cancel), name="glassbox-model-worker", daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def run(self, op: str, **kwargs: Any) -> Generator[Progress, None, Any]:
        """One job as a generator: yields :class:`Progress`, returns the worker's result.

        Any earlier cancel request is cleared now, when the job is created, so a
        :meth:`cancel` made before the generator first runs (in another thread)
        still stops this job.

        Raises (from the generator):
            WorkerError: the job raised in the worker (message says why).
            WorkerCrashed: the worker died; it is started again for the next job.
            JobCancelled: :meth:`cancel` was called.
        """
        self._cancel.clear()
        return self._run(op, kwargs)

    def _run(self, op: str, kwargs: dict) -> Generator[Progress, None, Any]:
        with self._lock:
            self.start()
            job_id = next(self._ids)
            self._conn.send((job_id, op, kwargs))
            while True:
                if not self._conn.poll(0.05):
                    if not self._process.is_alive():
                        self._died()
                    continue
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    self._died()
                kind, msg_id = message[0], message[1]
                if msg_id != job_id:
                    continue  # a late answer to a cancelled job
                if kind == "progress":
                    yield Progress(message[2], message[3], message[4])
                elif kind == "result":
                    if op == "info":
                        self.device = message[2].get("device")
                    return message[2]
                elif message[2] == "cancelled":
                    raise JobCancelled("cancelled", "cancelled")
                else:
                    raise WorkerError(message[2], message[3])

    def cancel(self) -> None:
        """Ask the running job to stop; kill the worker if it has not stopped after a grace period."""
        self._cancel.set()
        process = self._process
        if process is None:
            return

        def enforce() -> None:
            if self._cancel.is_set() and process.is_alive() and self._lock.locked():
                process.kill()

        timer = threading.Timer(GRACE_SECONDS, enforce)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        """Stop the worker process."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
        self._reset()

    def _died(self) -> None:
        self._reset()
        if self._cancel.is_set():
            raise JobCancelled("cancelled", "cancelled (the model worker was stopped and will restart for the next job)")
        raise WorkerCrashed("crashed", "the model worker stopped unexpectedly (a crash or out of memory); it will restart for the next job")

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
