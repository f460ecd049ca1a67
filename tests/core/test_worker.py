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
from glassbox_xai.jobs import drive
from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.worker import protocol
from glassbox_xai.worker.client import JobCancelled, ModelWorker, WorkerCrashed, WorkerError, WorkerTimeout

TEST_OPS = ("worker_test_ops",)  # tests/core/worker_test_ops.py: sleep, crash, lookup, echo


def drain(job):
    progress = []
    return progress, drive(job, progress.append)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs") / "worker.log"


@pytest.fixture(scope="module")
def worker(log_file):
    w = ModelWorker(log_file=log_file, extra_ops=TEST_OPS)
    yield w
    w.stop()


def test_info_runs_in_another_process(worker):
    _, info = drain(worker.run("info"))
    assert info["pid"] != os.getpid() and (info["device"] == "CPU" or info["device"].startswith("GPU:"))
    assert worker.device == info["device"] and worker.pid == info["pid"]


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
    with pytest.raises(WorkerError, match="unknown worker operation 'fly'; expected one of .*'segment'") as unknown:
        drain(worker.run("fly"))
    assert unknown.value.kind == protocol.UNKNOWN_OPERATION
    _, info = drain(worker.run("info"))  # the worker survives errors
    assert info["pid"] == worker.pid


def test_a_key_error_inside_an_operation_is_reported_as_itself_with_its_traceback_in_the_log(worker, log_file):
    with pytest.raises(WorkerError) as caught:
        drain(worker.run("lookup", table={"a": 1}, key="missing"))
    error = caught.value
    assert error.kind == "KeyError" and "unknown worker operation" not in str(error)
    assert str(error) == "KeyError: 'missing' (in worker operation 'lookup')"
    assert "in op_lookup" in error.traceback and "return table[key]" in error.traceback
    assert error.log_file == str(log_file) and error.summary.endswith(f"(full traceback in {log_file})")
    assert error.traceback in log_file.read_text()  # the whole traceback, not a few lines


def test_a_client_of_another_protocol_version_is_refused_with_a_clear_message(monkeypatch, tmp_path):
    w = ModelWorker(log_file=tmp_path / "worker.log")
    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", protocol.PROTOCOL_VERSION + 1)  # only this (the client's) side
    with pytest.raises(WorkerError, match=r"napari client speaks GlassBox worker protocol version \d+, this side version \d+") as caught:
        drain(w.run("info"))
    assert caught.value.kind == protocol.PROTOCOL_MISMATCH and not isinstance(caught.value, WorkerCrashed)
    assert "reinstall" in str(caught.value) and not w.alive
    monkeypatch.undo()
    _, info = drain(w.run("info"))  # a client of the right version gets a worker
    assert info["pid"] == w.pid
    w.stop()


@pytest.mark.parametrize("theirs, refused", [(protocol.PROTOCOL_VERSION, False), (1, True), (None, True), ("2", True)])
def test_version_check(theirs, refused):
    message = protocol.version_mismatch(theirs, "model worker")
    assert (message is not None) == refused
    if refused:
        assert f"version {theirs!r}" in message and "model worker" in message


def test_test_operations_do_not_ship():
    from glassbox_xai.worker.server import OPS

    assert {"sleep", "crash", "lookup", "echo"}.isdisjoint(OPS)


def test_arguments_that_cannot_be_sent_are_refused_before_the_worker_is_touched(worker):
    _, before = drain(worker.run("info"))
    with pytest.raises(WorkerError, match="cannot be sent to the model worker"):
        drain(worker.run("echo", payload=lambda: 0))
    _, after = drain(worker.run("info"))
    assert after["pid"] == before["pid"]


def test_a_job_past_its_timeout_stops_the_worker_and_the_next_job_runs(worker):
    with pytest.raises(WorkerTimeout, match="took too long for 'sleep'"):
        drain(worker.run("sleep", timeout_s=1.0, seconds=30, steps=300))
    assert not worker.alive
    _, out = drain(worker.run("sleep", timeout_s=120, seconds=0.1, steps=2))
    assert out == {"slept": 0.1}


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
    epochs = [p.message.split(":")[0] for p in progress if p.message.startswith("epoch")]
    within = [p.message for p in progress if "batch" in p.message]
    assert epochs == ["epoch 1/2"] * 2 + ["epoch 2/2"] * 2 and within[0].startswith("epoch 1/2: batch 1/1")  # each batch, then the epoch's end
    assert [p.done for p in progress] == sorted(p.done for p in progress)  # the bar never goes back
    assert out["epochs_run"] == 2 and (Path(out["bundle"]) / "card.json").is_file()
    assert out["version"] == Path(out["bundle"]).parent.name  # registered by the core under its run's name (in the
    # worker's GLASSBOX_HOME, which is the first test's of this module: test_finetune checks the registration itself)
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
