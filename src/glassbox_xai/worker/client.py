"""The napari side of the model worker: a persistent, spawned process.

It starts when a job first needs it (with a protocol-version handshake), is reused
between jobs, and is started again if it died. ``run`` is a generator (progress
in, result out) meant for a napari ``thread_worker``; it never imports TensorFlow
in the calling process. Cancel stops the job at its next progress step, or kills
the worker after a grace period if the job does not get there.

Starting, sending and receiving all run inside one crash handler: however the
worker dies (a crash, out of memory, a kill at any moment), the job raises
:class:`WorkerCrashed` and the next job starts a fresh worker.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import pickle
import threading
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any, Generator

from ..jobs import Progress
from . import protocol

GRACE_SECONDS = 2.0
START_TIMEOUT_SECONDS = 120.0  # spawning Python and importing numpy/OpenCV on a busy laptop
LOG_NAME = "worker.log"


def default_log_file() -> Path:
    """Where the worker writes full tracebacks: ``$GLASSBOX_HOME/logs/worker.log`` (default ``~/.glassbox-xai``)."""
    from ..model.versions import home

    return home() / "logs" / LOG_NAME


class WorkerError(Exception):
    """A job failed in the worker; ``kind`` names the exception type there.

    ``traceback`` is the worker's whole traceback text and ``log_file`` the log that
    holds it. Not a RuntimeError: superqt treats a RuntimeError from a thread
    worker as a deleted worker and drops it without emitting ``errored`` or ``finished``.
    """

    def __init__(self, kind: str, message: str, traceback: str = "", log_file: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.traceback = traceback
        self.log_file = log_file

    @property
    def summary(self) -> str:
        """One line for a notification: the message's first line, and where the traceback is."""
        first = self.message.splitlines()[0] if self.message else self.kind
        return f"{first} (full traceback in {self.log_file})" if self.traceback and self.log_file else first


class WorkerCrashed(WorkerError):
    """The worker process died during a job (a crash, out of memory, killed)."""


class WorkerTimeout(WorkerError):
    """A job ran longer than its timeout; the worker was stopped."""


class JobCancelled(WorkerError):
    """The job was cancelled by the user."""


class _Died(Exception):
    """Internal: the pipe broke or the process is gone."""


class ModelWorker:
    """A persistent worker process running model jobs one at a time.

    Args:
        log_file: where the worker logs full tracebacks (default :func:`default_log_file`).
        extra_ops: importable modules whose ``OPS`` dict the worker adds to its
            operations (tests use it for jobs that sleep or crash).
    """

    def __init__(self, log_file: str | Path | None = None, extra_ops: tuple[str, ...] = ()) -> None:
        self._ctx = mp.get_context("spawn")
        self._process = None
        self._conn = None
        self._cancel = self._ctx.Event()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._log_file = Path(log_file) if log_file is not None else None
        self._extra_ops = tuple(extra_ops)
        self.device: str | None = None
        self.pid: int | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def log_file(self) -> Path:
        """The log file of the worker's tracebacks."""
        return self._log_file or default_log_file()

    def start(self) -> None:
        """Start the worker process if it is not running, and check its protocol version.

        Raises:
            WorkerError: the worker refused this client, or it is of another version.
            WorkerCrashed: the worker died while starting.
        """
        try:
            self._start()
        except _Died:
            self._reset()
            raise WorkerCrashed("crashed", "the model worker stopped unexpectedly while starting; it will restart for the next job") from None

    def run(self, op: str, /, *, timeout_s: float | None = None, **kwargs: Any) -> Generator[Progress, None, Any]:
        """One job as a generator: yields :class:`Progress`, returns the worker's result.

        ``timeout_s`` bounds the whole job (starting the worker included): past it the
        worker is stopped and :class:`WorkerTimeout` raised. Any earlier cancel request
        is cleared now, when the job is created, so a :meth:`cancel` made before the
        generator first runs (in another thread) still stops this job.

        Raises (from the generator):
            WorkerError: the job raised in the worker (``kind``, message, traceback).
            WorkerCrashed: the worker died; it is started again for the next job.
            WorkerTimeout: the job ran past ``timeout_s``.
            JobCancelled: :meth:`cancel` was called.
        """
        self._cancel.clear()
        return self._run(op, kwargs, timeout_s)

    def _run(self, op: str, kwargs: dict, timeout_s: float | None) -> Generator[Progress, None, Any]:
        with self._lock:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            job_id = next(self._ids)
            data = _pickled(protocol.Request(job_id, op, kwargs), op)  # the caller's fault: raised before the worker is touched
            try:
                self._start(deadline, op)
                self._send_bytes(data)
                while True:
                    message = self._receive(deadline, op)
                    if getattr(message, "job_id", None) != job_id:
                        continue  # a late answer to a cancelled or abandoned job
                    if isinstance(message, protocol.JobProgress):
                        yield message.progress
                    elif isinstance(message, protocol.Result):
                        if op == "info" and isinstance(message.value, dict):
                            self.device = message.value.get("device")
                        return message.value
                    else:
                        raise _job_error(message)
            except _Died:
                self._died()

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
                self._conn.send(protocol.Shutdown())
            except (OSError, ValueError):
                pass
        if self._process is not None:
            self._process.join(timeout=5)
        self._kill()  # (if it did not finish in time)

    # -- inside the crash handling: every broken pipe or dead process becomes _Died --

    def _start(self, deadline: float | None = None, op: str = "start") -> None:
        if self.alive and self._conn is not None:
            return
        self._reset()
        from .server import serve

        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=serve, args=(child, self._cancel), name="glassbox-model-worker", daemon=True)
        self._process, self._conn = process, parent
        try:
            process.start()
        except OSError as exc:
            raise WorkerError("OSError", f"cannot start the model worker process: {exc}") from exc
        finally:
            child.close()
        self._send_bytes(_pickled(protocol.Hello(protocol.PROTOCOL_VERSION, str(self.log_file), self._extra_ops), "the handshake"))
        start_by = time.monotonic() + START_TIMEOUT_SECONDS
        reply = self._receive(start_by if deadline is None else min(deadline, start_by), op)
        if isinstance(reply, protocol.Error):
            self.stop()
            raise _job_error(reply)
        refusal = protocol.version_mismatch(getattr(reply, "version", None), "model worker")
        if not isinstance(reply, protocol.Ready) or refusal:
            self._kill()
            raise WorkerError(protocol.PROTOCOL_MISMATCH, refusal or f"the model worker answered {type(reply).__name__}, expected Ready")
        self.pid = reply.pid

    def _send_bytes(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError) as exc:  # BrokenPipeError, ConnectionResetError, a closed handle
            raise _Died from exc

    def _receive(self, deadline: float | None, op: str):
        """The next message; waits while the worker lives, the deadline has not passed."""
        try:
            while not self._conn.poll(0.05):
                if not self._process.is_alive():
                    raise _Died
                if deadline is not None and time.monotonic() > deadline:
                    self._kill()
                    raise WorkerTimeout("timeout", f"the model worker took too long for {op!r} and was stopped; it will restart for the next job")
            return self._conn.recv()
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:  # died mid-message
            raise _Died from exc

    def _died(self) -> None:
        self._kill()
        if self._cancel.is_set():
            raise JobCancelled(protocol.CANCELLED, "cancelled (the model worker was stopped and will restart for the next job)")
        raise WorkerCrashed("crashed", "the model worker stopped unexpectedly (a crash or out of memory); it will restart for the next job")

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._reset()

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self.pid = None, None, None


def _pickled(request: protocol.Request, op: str) -> bytes:
    try:
        return bytes(ForkingPickler.dumps(request))
    except Exception as exc:
        raise WorkerError(type(exc).__name__, f"the arguments of {op!r} cannot be sent to the model worker ({exc}); "
                                              "expected plain arrays, numbers, strings, lists and dicts") from exc


def _job_error(message) -> WorkerError:
    if not isinstance(message, protocol.Error):
        return WorkerError("TypeError", f"the model worker answered {type(message).__name__}; expected progress, a result or an error")
    if message.kind == protocol.CANCELLED:
        return JobCancelled(message.kind, message.message)
    return WorkerError(message.kind, message.message, message.traceback, message.log_file)
