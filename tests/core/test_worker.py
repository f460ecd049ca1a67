"""The persistent model worker process: results, progress, errors, cancel, crash recovery."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.worker.client import JobCancelled, ModelWorker, WorkerCrashed, WorkerError


def drain(job):
    progress = []
    while True:
        try:
            progress.append(next(job))
        except StopIteration as stop:
            return progress, stop.value


@pytest.fixture(scope="module")
def worker():
    w = ModelWorker()
    yield w
    w.stop()


def test_info_runs_in_another_process(worker):
    _, info = drain(worker.run("info"))
    assert info["pid"] != os.getpid() and (info["device"] == "CPU" or info["device"].startswith("GPU:"))
    assert worker.device == info["device"]


def test_segment_returns_native_maps_and_metrics(worker, tiny_bundle, native_images):
    image = read_image(native_images[0])
    truth = read_mask(native_images[0].with_name(native_images[0].stem + "_segmentation.png"))
    progress, out = drain(worker.run("segment", image=image, bundle=str(tiny_bundle), threshold=0.5, truth=truth))
    assert out["mask"].shape == out["probabilities"].shape == image.shape[:2]
    assert out["metrics"] == scores(Confusion.from_masks(out["mask"], truth))
    assert progress[-1].done == progress[-1].total


def test_errors_come_back_as_messages(worker, tmp_path):
    with pytest.raises(WorkerError, match="does not exist|no card.json|not a folder"):
        drain(worker.run("segment", image=np.zeros((64, 64, 3), np.uint8), bundle=str(tmp_path / "nowhere")))
    with pytest.raises(WorkerError, match="unknown worker operation"):
        drain(worker.run("fly"))
    _, info = drain(worker.run("info"))  # the worker survives errors
    assert info["pid"] != os.getpid()


def test_cancel_stops_a_job_at_once_and_the_worker_goes_on(worker):
    job = worker.run("sleep", seconds=30, steps=300)
    next(job)
    started = time.perf_counter()
    worker.cancel()
    with pytest.raises(JobCancelled):
        drain(job)
    assert time.perf_counter() - started < 3
    _, out = drain(worker.run("sleep", seconds=0.1, steps=2))
    assert out == {"slept": 0.1}


def test_a_crash_is_reported_and_the_worker_restarts(worker):
    _, before = drain(worker.run("info"))
    with pytest.raises(WorkerCrashed, match="stopped unexpectedly"):
        drain(worker.run("crash"))
    _, after = drain(worker.run("info"))
    assert after["pid"] != before["pid"]


def test_the_client_does_not_import_tensorflow():
    code = "import sys, glassbox_xai.worker.client as c; c.ModelWorker(); print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_finetune_in_the_worker_reports_epochs_and_cancels_at_once(worker, tiny_bundle, tmp_path):
    from data_paths import ISIC_IMAGES, split_ids
    from glassbox_xai.hitl.store import RetrainingSet

    store = RetrainingSet(tmp_path / "set")
    for image_id in split_ids("dev_val")[:2]:
        path = ISIC_IMAGES / f"{image_id}.jpg"
        mask = np.zeros(read_image(path).shape[:2], bool)
        mask[100:300, 150:350] = True
        store.save(path, mask.shape, mask, np.zeros_like(mask), {"annotator": "test"})
    progress, out = drain(worker.run("finetune", bundle=str(tiny_bundle), set_dir=str(store.root), epochs=2))
    assert [p.message.split(":")[0] for p in progress if p.message.startswith("epoch")] == ["epoch 1/2", "epoch 2/2"]
    assert out["epochs_run"] == 2 and (Path(out["bundle"]) / "card.json").is_file()
    job = worker.run("finetune", bundle=str(tiny_bundle), set_dir=str(store.root), epochs=500)
    while not next(job).message.startswith("epoch"):
        pass
    started = time.perf_counter()
    worker.cancel()
    with pytest.raises(JobCancelled):
        drain(job)
    assert time.perf_counter() - started < 3
    _, info = drain(worker.run("info"))  # the worker (or its replacement) takes the next job
    assert info["pid"] != os.getpid()
