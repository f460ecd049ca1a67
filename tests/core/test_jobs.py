"""The one job driver: drive() returns the job's result; relay() nests a job in another."""

from __future__ import annotations

import pytest

from glassbox_xai.jobs import Progress, Stopped, drive, relay


def counting(n: int, extra=None, log: list | None = None):
    try:
        for i in range(n):
            yield Progress(i, n, f"step {i}")
            if extra is not None:
                yield extra
        return f"counted {n}"
    finally:
        if log is not None:
            log.append("closed")


def test_drive_returns_the_result_and_reports_progress():
    seen = []
    assert drive(counting(3), seen.append) == "counted 3"
    assert [(p.done, p.total) for p in seen] == [(0, 3), (1, 3), (2, 3)]


def test_drive_returns_none_for_a_job_without_a_result():
    def nothing():
        yield Progress(0, 1)

    assert drive(nothing()) is None


def test_should_stop_closes_the_job_and_raises_stopped():
    log, seen = [], []
    with pytest.raises(Stopped):
        drive(counting(100, log=log), seen.append, should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2 and log == ["closed"]


def test_other_items_go_to_on_item_and_are_never_dropped_silently():
    items = []
    assert drive(counting(2, extra="failure"), on_item=items.append) == "counted 2"
    assert items == ["failure", "failure"]
    log = []
    with pytest.raises(TypeError, match="yielded a str; expected only Progress"):
        drive(counting(2, extra="failure", log=log))
    assert log == ["closed"]


def test_relay_maps_progress_turns_items_into_progress_and_returns_the_inner_result():
    def outer(items: list):
        result = yield from relay(counting(2, extra="skipped"), lambda p: Progress(10 + p.done, 20, p.message),
                                  lambda item: items.append(item) or Progress(0, 20, item))
        return result.upper()

    items, seen = [], []
    assert drive(outer(items), seen.append) == "COUNTED 2"
    assert items == ["skipped", "skipped"]
    assert [(p.done, p.message) for p in seen] == [(10, "step 0"), (0, "skipped"), (11, "step 1"), (0, "skipped")]
