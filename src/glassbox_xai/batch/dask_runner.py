"""Batch jobs on ``dask.distributed``: every worker loads the model once, reads images
from paths and writes outputs itself; the client sends paths and gets small records.

``--workers N`` starts a :class:`~distributed.LocalCluster` of N single-threaded worker
processes; ``--scheduler ADDRESS`` joins a running cluster (``dask scheduler`` and
``dask worker`` on several machines, or ``dask-jobqueue`` on SLURM).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Generator, Iterable, Iterator
from urllib.parse import urlparse

from distributed import WorkerPlugin

from .jobs import Item, Job, ModelSpec, run_chunk

log = logging.getLogger(__name__)
PLUGIN = "glassbox-model"


class ModelPlugin(WorkerPlugin):
    """A Dask worker plugin holding this worker's segmenter (loaded at the first chunk, then kept).

    Args:
        spec: the model bundle and inference options.
        workers_per_host: the worker addresses on each host (by host name): each worker
            sets TensorFlow to its share of the host's cores (``os.sched_getaffinity``)
            and, on a host with several GPUs, takes GPU ``k mod GPUs`` where ``k`` is its
            place among the host's workers.
    """

    name = PLUGIN

    def __init__(self, spec: ModelSpec, workers_per_host: dict[str, list[str]] | None = None) -> None:
        self.spec = spec
        self.workers_per_host = dict(workers_per_host or {})
        self.segmenter = None
        self.threads = 0
        self.slot = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "workers_per_host": self.workers_per_host}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["spec"], state["workers_per_host"])

    def setup(self, worker) -> None:
        peers = self.workers_per_host.get(urlparse(worker.address).hostname or "", [])
        self.threads = max(1, len(os.sched_getaffinity(0)) // max(1, len(peers)))
        self.slot = peers.index(worker.address) if worker.address in peers else 0

    def teardown(self, worker) -> None:
        self.segmenter = None

    def run(self, job: Job, items: list[Item]) -> dict:
        """Process one chunk on this worker; returns its records and the seconds it took."""
        with self._lock:  # one chunk at a time per model, however many threads the worker has
            start = time.perf_counter()
            if self.segmenter is None:
                configure_tensorflow(self.threads, self.slot)
                self.segmenter = self.spec.load()
            records = run_chunk(self.segmenter, job, items)
            return {"records": records, "seconds": time.perf_counter() - start}


def configure_tensorflow(threads: int, slot: int = 0) -> None:
    """Use ``threads`` CPU threads per op, and GPU ``slot mod GPUs`` when there are GPUs
    (memory growth on, so several workers can share one).

    TensorFlow takes these settings only before its runtime starts; a worker living in a
    process where it already started (``processes=False``) keeps the process's settings.
    """
    from ..tf_import import import_tensorflow

    tf = import_tensorflow()
    try:
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            mine = gpus[slot % len(gpus)]
            tf.config.set_visible_devices(mine, "GPU")
            tf.config.experimental.set_memory_growth(mine, True)
        if threads > 0:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:
        log.info("TensorFlow already initialised in this process; keeping its settings (%s)", exc)


def _on_worker(job: Job, items: list[Item]) -> dict:
    from distributed import get_worker

    worker = get_worker()
    result = worker.plugins[PLUGIN].run(job, items)
    return {**result, "worker": worker.address}


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, processes: bool = True) -> Iterator:
    """A client of a new local cluster of ``workers`` single-threaded workers, or of the
    running cluster at ``scheduler``; closed (and the local cluster stopped) on exit."""
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.INFO):  # distributed logs every start and stop at INFO; keep them for -v
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    if not workers or workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    import dask

    # The workers' statistical profiler samples every thread's stack every 10 ms: on 2 cores
    # it cost 5% of a run (600 images: 35.3 s with it, 33.8 s without). Nobody looks at a
    # dashboard here (there is none), so the workers we start go without it.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


def run_on_dask(client, spec: ModelSpec, job: Job, chunks: Iterable[list[Item]], ahead: int = 2,
                full: int | None = None) -> Generator[dict, None, None]:
    """Submit chunks and yield each finished chunk's ``{"records", "seconds", "worker"}``;
    a chunk whose task failed yields failed records.

    Chunks of at least ``full`` images (default: the largest chunk) are submitted
    ``ahead`` per worker, so no worker waits for the client; a smaller chunk (the
    tapered end of :func:`~glassbox_xai.batch.runner.tapered`) is submitted only when a
    worker is free, so the scheduler gives it to that worker rather than queue it
    behind a busy one.
    """
    from distributed import as_completed

    client.wait_for_workers(1)
    hosts: dict[str, list[str]] = {}
    for address in sorted(client.scheduler_info()["workers"]):
        hosts.setdefault(urlparse(address).hostname or "", []).append(address)
    client.register_plugin(ModelPlugin(spec, hosts), name=PLUGIN)
    workers = sum(map(len, hosts.values()))
    pending = deque(chunks)
    full = full or max((len(c) for c in pending), default=0)
    submitted: dict = {}
    queue = as_completed()

    def fill() -> None:
        while pending and len(submitted) < (max(2, ahead * workers) if len(pending[0]) >= full else workers):
            chunk = pending.popleft()
            submitted[_submit(client, queue, job, chunk)] = chunk

    fill()
    for future in queue:
        chunk = submitted.pop(future)
        fill()
        try:
            yield future.result()
        except Exception as exc:  # a worker died or the task raised: the run goes on
            message = f"worker task failed: {type(exc).__name__}: {exc}"
            yield {"records": [{"id": i.id, "image": i.image, "status": "failed", "message": message} for i in chunk],
                   "seconds": 0.0, "worker": ""}
        future.release()


def _submit(client, queue, job: Job, chunk: list[Item]):
    future = client.submit(_on_worker, job, chunk, pure=False)
    queue.add(future)
    return future
