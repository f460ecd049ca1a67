"""Long jobs, and the one loop that runs them.

A job is a generator that yields :class:`Progress` and returns its result
(``StopIteration.value``), e.g. ``evaluate_model``, ``explain``,
``rank_by_uncertainty`` or a model-worker operation. Scripts and the command line
run one with :func:`drive`; the model worker runs the same generator with
``should_stop`` tied to the Cancel button; a napari ``thread_worker`` can iterate
it directly. Pure Python: importing this never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generator, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """A progress report from a long job: ``done`` of ``total`` steps."""

    done: int
    total: int
    message: str = ""


class Stopped(Exception):
    """:func:`drive` stopped a job because ``should_stop()`` returned true."""


def drive(job: Generator[Any, None, R], on_progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, on_item: Callable[[Any], None] | None = None) -> R:
    """Run ``job`` to its end and return its result.

    Args:
        job: a generator that yields :class:`Progress` and returns its result.
        on_progress: called with every :class:`Progress` (e.g. a progress bar).
        should_stop: asked before every step; when it returns true the job is
            closed (its ``finally`` blocks run) and :class:`Stopped` is raised.
        on_item: called with anything else the job yields (e.g. a
            :class:`~glassbox_xai.inference.Failure` for an image it skipped). Without
            it such an item is an error, so that nothing a job reports is dropped.

    Raises:
        Stopped: ``should_stop()`` returned true.
        TypeError: the job yielded something other than Progress and no ``on_item`` was given.
    """
    while True:
        if should_stop is not None and should_stop():
            job.close()
            raise Stopped
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Progress):
            if on_progress is not None:
                on_progress(item)
        elif on_item is not None:
            on_item(item)
        else:
            job.close()
            raise TypeError(f"the job {getattr(job, '__name__', job)!r} yielded a {type(item).__name__}; expected only "
                            f"Progress (pass on_item to drive() to receive anything else it yields)")


def relay(job: Generator[Any, None, R], map_progress: Callable[[Progress], Progress] | None = None,
          on_item: Callable[[Any], Progress | None] | None = None) -> Generator[Progress, None, R]:
    """Run ``job`` inside another job (``result = yield from relay(job, ...)``).

    Its progress is passed on, through ``map_progress`` when given (e.g. to place it
    within a larger job's total); anything else it yields goes to ``on_item``, which
    may return a :class:`Progress` to pass on in its place.

    Raises:
        TypeError: the job yielded something other than Progress and no ``on_item`` was given.
    """
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Progress):
            yield map_progress(item) if map_progress is not None else item
        elif on_item is not None:
            report = on_item(item)
            if report is not None:
                yield report
        else:
            job.close()
            raise TypeError(f"the job {getattr(job, '__name__', job)!r} yielded a {type(item).__name__}; expected only "
                            f"Progress (pass on_item to relay() to receive anything else it yields)")
