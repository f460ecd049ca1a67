"""The messages between napari (the client) and the model worker process.

Every message is a small frozen dataclass, pickled over a private pipe. A session:

1. the client starts the worker and sends :class:`Hello` (its protocol version, the
   log file, optional extra operation modules);
2. the worker answers :class:`Ready` (its version, its pid), or an :class:`Error`
   of kind ``"ProtocolMismatch"`` and exits when the versions differ;
3. per job the client sends a :class:`Request`; the worker answers any number of
   :class:`JobProgress`, then one :class:`Result` or one :class:`Error`;
4. :class:`Shutdown` (or a closed pipe) ends the worker.

Change :data:`PROTOCOL_VERSION` whenever a message changes shape or meaning.
Pure Python: the napari process imports this, never TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..jobs import Progress

PROTOCOL_VERSION = 2  # 1 was the positional tuples of glassbox-xai 0.x before typed messages

CANCELLED = "cancelled"  # the Error kind of a job stopped by the client's cancel
PROTOCOL_MISMATCH = "ProtocolMismatch"
UNKNOWN_OPERATION = "UnknownOperation"


@dataclass(frozen=True)
class Hello:
    """Client -> worker, first message: who is asking, and where the worker logs."""

    version: int
    log_file: str
    extra_ops: tuple[str, ...] = ()  # importable modules with an ``OPS`` dict, merged over the shipped ones


@dataclass(frozen=True)
class Ready:
    """Worker -> client, answer to :class:`Hello` when the versions match."""

    version: int
    pid: int
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """Client -> worker: run operation ``op`` with keyword arguments ``kwargs``."""

    job_id: int
    op: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobProgress:
    """Worker -> client: job ``job_id`` reported progress."""

    job_id: int
    progress: Progress


@dataclass(frozen=True)
class Result:
    """Worker -> client: job ``job_id`` finished; ``value`` is plain data (arrays, numbers, strings, dicts)."""

    job_id: int
    value: Any


@dataclass(frozen=True)
class Error:
    """Worker -> client: job ``job_id`` failed (0 for the handshake).

    ``kind`` is the exception type's name in the worker (or one of :data:`CANCELLED`,
    :data:`PROTOCOL_MISMATCH`, :data:`UNKNOWN_OPERATION`); ``traceback`` is the whole
    traceback text, also written to ``log_file``.
    """

    job_id: int
    kind: str
    message: str
    traceback: str = ""
    log_file: str = ""


@dataclass(frozen=True)
class Shutdown:
    """Client -> worker: finish now."""


def version_mismatch(theirs: object, who: str) -> str | None:
    """Why a peer speaking protocol ``theirs`` is refused (``who`` names it), or None when it matches."""
    if theirs == PROTOCOL_VERSION:
        return None
    return (f"the {who} speaks GlassBox worker protocol version {theirs!r}, this side version {PROTOCOL_VERSION}; "
            "napari and the model worker come from different installations of glassbox-xai: "
            "reinstall it and restart napari")
