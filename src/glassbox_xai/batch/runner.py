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


def run_batch(spec: ModelSpec, job: Job, items: list[Item], client=None, chunk_size: int = CHUNK) -> Generator[Progress | dict, None, None]:
    """Process ``items``; yields each finished chunk's ``{"records", "seconds", "worker"}``
    (records in any order on Dask) and a :class:`Progress` after each.

    With ``client`` (a ``distributed.Client``) the chunks run on its workers; without,
    in this process with one segmenter.
    """
    chunks = chunked(items, chunk_size)
    yield Progress(0, len(items), "starting")
    if client is not None:
        from .dask_runner import run_on_dask

        results = run_on_dask(client, spec, job, chunks)
    else:
        results = _in_process(spec, job, chunks)
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
