"""One generator that drives a batch job over chunks of images, in this process or on Dask."""

from __future__ import annotations

import time
from typing import Generator

from ..inference import Progress
from .jobs import Item, Job, ModelSpec, run_chunk
from .options import CHUNK


def chunked(items: list[Item], size: int) -> list[list[Item]]:
    """``items`` cut in order into lists of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def tapered(items: list[Item], size: int, workers: int, unit: int = 1) -> list[list[Item]]:
    """``items`` cut in order into chunks of ``size`` that shrink towards the end
    (..., 16, 16, 8, 8, 4, 4 for two workers and ``unit`` 4), so that ``workers``
    workers taking chunks as they free up finish within about one small chunk of each
    other, instead of one waiting while another works through a last full chunk.

    Chunks are multiples of ``unit`` (the model's batch size: a batch of another size
    makes TensorFlow trace the model again, about 0.4 s); what does not divide goes
    into the first chunk, where the workers start unevenly anyway.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    unit = max(1, min(unit, size))
    workers = max(1, workers)
    sizes: list[int] = []  # from the end
    left, step = len(items), unit
    while left >= unit:
        for _ in range(workers):
            if left < unit:
                break
            take = min(step, left - left % unit)
            sizes.append(take)
            left -= take
        step = min(step * 2, size)
    if left:  # fewer than unit left: they join the first chunk (or make it)
        if sizes and sizes[-1] + left <= size + unit:
            sizes[-1] += left
        else:
            sizes.append(left)
    chunks, start = [], 0
    for n in reversed(sizes):
        chunks.append(items[start : start + n])
        start += n
    return chunks


def run_batch(spec: ModelSpec, job: Job, items: list[Item], client=None, chunk_size: int = CHUNK) -> Generator[Progress | dict, None, None]:
    """Process ``items``; yields each finished chunk's ``{"records", "seconds", "worker"}``
    (records in any order on Dask) and a :class:`Progress` after each.

    With ``client`` (a ``distributed.Client``) the chunks run on its workers, cut by
    :func:`tapered` so the workers finish together; without, in this process with one
    segmenter, in chunks of ``chunk_size``.
    """
    yield Progress(0, len(items), "starting")
    if client is not None:
        from .dask_runner import run_on_dask

        workers = len(client.scheduler_info()["workers"])
        results = run_on_dask(client, spec, job, tapered(items, chunk_size, workers, unit=spec.batch_size), full=chunk_size)
    else:
        results = _in_process(spec, job, chunked(items, chunk_size))
    done = 0
    for result in results:
        done += len(result["records"])
        yield result
        yield Progress(done, len(items), f"{done} of {len(items)}")


def _in_process(spec: ModelSpec, job: Job, chunks: list[list[Item]]) -> Generator[dict, None, None]:
    segmenter = spec.load() if chunks else None
    for chunk in chunks:
        start = time.perf_counter()
        records = run_chunk(segmenter, job, chunk)
        yield {"records": records, "seconds": time.perf_counter() - start, "worker": "in-process"}
