"""The model worker process: TensorFlow lives here, never in the napari process.

The parent sends requests ``(job_id, op, kwargs)`` over a pipe; the worker answers
with ``("progress", job_id, done, total, message)``, then ``("result", job_id,
payload)`` or ``("error", job_id, kind, message)``. Payloads are plain arrays,
numbers, strings and dicts. Loaded bundles are cached by path between requests.
A cancel event set by the parent stops a job at its next progress step.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np

from ..inference import Progress
from .hitl_ops import op_finetune, op_rank


class Cancelled(Exception):
    """The parent asked the worker to stop the current job."""


def serve(conn, cancel_event) -> None:
    """Worker main loop: answer requests until the pipe closes or ``None`` arrives."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _yield_cpu_to_the_viewer()
    state = WorkerState()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        job_id, op, kwargs = request  # the client clears the cancel event before sending
        try:
            handler = OPS[op]
            job = handler(state, **kwargs)
            result = _drive(job, lambda p: conn.send(("progress", job_id, p.done, p.total, p.message)), cancel_event)
            conn.send(("result", job_id, result))
        except Cancelled:
            conn.send(("error", job_id, "cancelled", "cancelled"))
        except KeyError:
            conn.send(("error", job_id, "ValueError", f"unknown worker operation {op!r}; expected one of {sorted(OPS)}"))
        except Exception as exc:  # every failure goes back to the parent as a message
            conn.send(("error", job_id, type(exc).__name__, f"{exc}\n{traceback.format_exc(limit=3)}" if not isinstance(exc, ValueError) else str(exc)))


WORKER_NICENESS = 10


def _yield_cpu_to_the_viewer() -> None:
    """Run the model at a lower CPU priority than napari: on a machine whose cores the
    model saturates (a laptop, a 2-core CI box), the viewer still gets a core the
    moment it needs one to redraw, and the model keeps every idle cycle."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform, or not permitted: run at normal priority
        pass


def _drive(job: Generator, report: Callable[[Progress], None], cancel_event) -> Any:
    while True:
        if cancel_event.is_set():
            job.close()
            raise Cancelled
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Progress):
            report(item)


class WorkerState:
    """Models loaded in this worker, by bundle path."""

    def __init__(self) -> None:
        self.segmenters: dict[str, Any] = {}
        self.device: str | None = None

    def segmenter(self, bundle: str, threshold: float | None = None):
        from ..inference import Segmenter

        key = str(Path(bundle).resolve())
        if key not in self.segmenters:
            self.segmenters[key] = Segmenter.from_bundle(key)
        segmenter = self.segmenters[key]
        base = Segmenter(segmenter.bundle, threshold=threshold, tta=segmenter.tta, postprocess=segmenter.postprocess)
        self.device = base.device
        return base


def op_info(state: WorkerState) -> Generator[Progress, None, dict]:
    """The device TensorFlow runs on, and the process id."""
    from ..inference import compute_device
    from ..tf_import import import_tensorflow

    yield Progress(0, 1, "starting TensorFlow")
    import_tensorflow()
    state.device = compute_device()
    return {"device": state.device, "pid": os.getpid()}


def op_segment(state: WorkerState, image: np.ndarray, bundle: str, threshold: float | None = None,
               truth: np.ndarray | None = None) -> Generator[Progress, None, dict]:
    """Segment one RGB uint8 image; with ``truth``, also score it."""
    from ..metrics import Confusion, scores

    yield Progress(0, 2, "loading model")
    segmenter = state.segmenter(bundle, threshold)
    yield Progress(1, 2, f"segmenting on {segmenter.device}")
    prediction = segmenter.predict(image)
    out = {
        "probabilities": prediction.probabilities,
        "mask": prediction.mask,
        "threshold": prediction.threshold,
        "device": segmenter.device,
        "card": {"variant": segmenter.bundle.card.variant, "name": segmenter.bundle.card.name},
    }
    if truth is not None:
        confusion = Confusion.from_masks(prediction.mask, truth)
        out["metrics"] = scores(confusion)
        out["confusion"] = confusion.as_dict()
    yield Progress(2, 2, "done")
    return out


def op_compare(state: WorkerState, image: np.ndarray, bundles: list[str], truth: np.ndarray | None = None) -> Generator[Progress, None, dict]:
    """Segment one image with several bundles (each at its card's threshold)."""
    results = []
    for n, bundle in enumerate(bundles):
        yield Progress(n, len(bundles), f"model {n + 1} of {len(bundles)}")
        result = yield from op_segment(state, image, bundle, None, truth)
        results.append(result)
    yield Progress(len(bundles), len(bundles), "done")
    return {"results": results, "device": state.device, "card": {"variant": "compare", "name": f"{len(bundles)} models"}}


MAX_MAP_SIDE = 1024


def op_explain(state: WorkerState, image: np.ndarray, bundle: str, methods: tuple[str, ...], target="prediction",
               truth: np.ndarray | None = None, threshold: float | None = None, ig_steps: int = 32,
               baseline: str = "black") -> Generator[Progress, None, dict]:
    """The explanation panel of one image. Maps larger than ``MAX_MAP_SIDE`` come back
    subsampled by an integer ``step`` (the layer scale makes up for it)."""
    from ..xai.panel import explain

    segmenter = state.segmenter(bundle, threshold)
    panel = yield from explain(segmenter, image, tuple(methods), target, truth, ig_steps, baseline)
    step = max(1, int(np.ceil(max(image.shape[:2]) / MAX_MAP_SIDE)))
    return {
        "maps": {name: np.ascontiguousarray(m[::step, ::step]) for name, m in panel.maps.items()},
        "step": step,
        "stages": panel.gradcam_stages,
        "faithfulness": panel.faithfulness,
        "seconds": panel.seconds,
        "device": segmenter.device,
        "card": {"variant": segmenter.bundle.card.variant, "name": segmenter.bundle.card.name},
    }


def op_sleep(state: WorkerState, seconds: float, steps: int = 10) -> Generator[Progress, None, dict]:
    """A job that only waits (used to test progress and cancelling)."""
    import time

    for i in range(steps):
        time.sleep(seconds / steps)
        yield Progress(i + 1, steps, "sleeping")
    return {"slept": seconds}


def op_crash(state: WorkerState) -> Generator[Progress, None, dict]:
    """Ends the worker process abruptly (used to test recovery from a crash)."""
    yield Progress(0, 1, "crashing")
    os._exit(3)


def op_compare_folder(state: WorkerState, folder: str, bundles: list[str], names: list[str] | None = None,
                      n_picks: int = 3) -> Generator[Progress, None, dict]:
    """Score several bundles on a folder of images with masks (see :mod:`glassbox_xai.comparison`):
    per variant the macro metrics, pooled confusion, per-image Dice and review picks, plus
    each image's photograph and mask path."""
    from ..comparison import compare_variants
    from ..data.layout import discover

    samples = discover(folder, require_masks=True)
    names = list(names) if names else [Path(b).name for b in bundles]
    variants = yield from compare_variants(list(zip(names, bundles)), samples, n_picks, load=state.segmenter)
    return {
        "variants": [v.as_dict() for v in variants],
        "folder": str(folder),
        "images": {s.id: str(s.image) for s in samples},
        "masks": {s.id: str(s.mask) for s in samples},
        "device": state.device,
        "card": {"variant": "compare", "name": f"{len(bundles)} model(s) on {len(samples)} images"},
    }


OPS: dict[str, Callable[..., Generator]] = {
    "info": op_info, "segment": op_segment, "explain": op_explain, "compare": op_compare, "compare_folder": op_compare_folder,
    "rank": op_rank, "finetune": op_finetune, "sleep": op_sleep, "crash": op_crash,
}
