"""Wall-clock timing shared by the speed benchmarks."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int, warm: bool = True) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after one untimed call when ``warm``
    (a first call builds graphs and fills caches, which is not what a warm model costs)."""
    if warm:
        fn()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)
