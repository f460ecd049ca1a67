"""The model worker process: TensorFlow lives here, never in the napari process.

It speaks the typed messages of :mod:`.protocol`: a :class:`~.protocol.Hello`
handshake (a client of another protocol version is refused), then one
:class:`~.protocol.Request` at a time, answered by progress and a result or an
error. Payloads are plain arrays, numbers, strings and dicts. Loaded bundles are
cached by path between requests. A cancel event set by the parent stops a job at
its next progress step. Every failure's whole traceback goes to the log file the
client named, and back to the client with the error.
"""

from __future__ import annotations

import importlib
import logging
import logging.handlers
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np

from ..jobs import Progress, Stopped, drive
from . import protocol
from .hitl_ops import op_finetune, op_rank
from .summary import model_summary

log = logging.getLogger(__name__)


def serve(conn, cancel_event) -> None:
    """Worker main loop: the handshake, then answer requests until the pipe closes or
    :class:`~.protocol.Shutdown` arrives."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _yield_cpu_to_the_viewer()
    try:
        hello = conn.recv()
    except (EOFError, OSError):
        return
    ops = _handshake(conn, hello)
    if ops is None:
        return
    state = WorkerState()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None or isinstance(request, protocol.Shutdown):
            return
        conn.send(_answer(request, ops, state, conn, cancel_event))


def _handshake(conn, hello) -> dict[str, Callable[..., Generator]] | None:
    """Check the client's protocol version and set up logging; the operations this worker runs, or None (refused)."""
    refusal = protocol.version_mismatch(getattr(hello, "version", None), "napari client")
    if not isinstance(hello, protocol.Hello) or refusal:
        conn.send(protocol.Error(0, protocol.PROTOCOL_MISMATCH, refusal or f"expected a Hello message first, got {type(hello).__name__}"))
        return None
    log_file = _log_to(hello.log_file)
    ops = dict(OPS)
    try:
        for module in hello.extra_ops:
            ops.update(importlib.import_module(module).OPS)
    except Exception as exc:  # the client asked for operations this worker cannot load
        conn.send(_error(0, f"loading worker operations from {hello.extra_ops}", exc, log_file))
        return None
    log.info("model worker %d ready (protocol %d, operations %s)", os.getpid(), protocol.PROTOCOL_VERSION, sorted(ops))
    conn.send(protocol.Ready(protocol.PROTOCOL_VERSION, os.getpid(), tuple(sorted(ops))))
    return ops


def _answer(request, ops: dict, state: "WorkerState", conn, cancel_event):
    """Run one request; its :class:`~.protocol.Result` or :class:`~.protocol.Error`."""
    if not isinstance(request, protocol.Request):
        return protocol.Error(0, "TypeError", f"expected a Request, got {type(request).__name__}")
    handler = ops.get(request.op)  # looked up before running: a KeyError inside an op is reported as itself
    if handler is None:
        return protocol.Error(request.job_id, protocol.UNKNOWN_OPERATION,
                              f"unknown worker operation {request.op!r}; expected one of {sorted(ops)}")
    try:  # the client clears the cancel event before sending
        value = drive(handler(state, **request.kwargs), on_progress=lambda p: conn.send(protocol.JobProgress(request.job_id, p)),
                      should_stop=cancel_event.is_set)
    except Stopped:
        return protocol.Error(request.job_id, protocol.CANCELLED, "cancelled")
    except Exception as exc:  # every failure goes back to the parent as a message, and to the log
        return _error(request.job_id, f"worker operation {request.op!r}", exc, _log_file())
    return protocol.Result(request.job_id, value)


def _error(job_id: int, what: str, exc: Exception, log_file: str) -> protocol.Error:
    text = traceback.format_exc()
    log.error("%s failed (job %d):\n%s", what, job_id, text)
    # a ValueError (bad image, mask, bundle) carries a message written for the user; anything else is named
    message = str(exc) if isinstance(exc, ValueError) and str(exc) else f"{type(exc).__name__}: {exc} (in {what})"
    return protocol.Error(job_id, type(exc).__name__, message, text, log_file)


def _log_to(path: str) -> str:
    """Send this process's ``glassbox_xai`` log records to ``path`` (rotated at 1 MB); the path, or "" when it cannot be written."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        print(f"glassbox model worker: cannot write its log {path} ({exc}); tracebacks go to the notification only")
        return ""
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("glassbox_xai")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def _log_file() -> str:
    for handler in logging.getLogger("glassbox_xai").handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return ""


WORKER_NICENESS = 10


def _yield_cpu_to_the_viewer() -> None:
    """Run the model at a lower CPU priority than napari: on a machine whose cores the
    model saturates (a laptop, a 2-core CI box), the viewer still gets a core the
    moment it needs one to redraw, and the model keeps every idle cycle."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform, or not permitted: run at normal priority
        pass


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
        base = segmenter.at_threshold(threshold)  # shares the model and its folded forward pass
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
        "card": model_summary(segmenter.bundle),
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
    """The explanation panel of one image. A photograph larger than ``MAX_MAP_SIDE`` is
    explained on a copy shrunk by an integer ``step`` (the layer scale makes up for it),
    so no map is ever held at full size: memory stays bounded on 7,000 px photographs."""
    from ..xai.explain_files import explain_bounded

    segmenter = state.segmenter(bundle, threshold)
    step = max(1, int(np.ceil(max(image.shape[:2]) / MAX_MAP_SIDE)))
    _, panel = yield from explain_bounded(segmenter, image, tuple(methods), target, truth, ig_steps, baseline, step=step)
    return {
        "maps": {name: np.ascontiguousarray(m) for name, m in panel.maps.items()},
        "step": step,
        "stages": panel.gradcam_stages,
        "faithfulness": panel.faithfulness,
        "seconds": panel.seconds,
        "calibration": dict(segmenter.bundle.card.calibration or {}),  # what the confidence maps' colours mean
        "device": segmenter.device,
        "card": model_summary(segmenter.bundle),
    }


def op_compare_folder(state: WorkerState, folder: str, bundles: list[str], names: list[str] | None = None,
                      n_picks: int = 3, gallery: str | None = None, n_gallery: int = 5) -> Generator[Progress, None, dict]:
    """Score several bundles on a folder of images with masks (see :mod:`glassbox_xai.comparison`):
    per variant the macro metrics, pooled confusion, per-image Dice and review picks, plus
    each image's photograph and mask path. With ``gallery`` (a method of
    :mod:`glassbox_xai.xai.gallery`), also each variant's galleries: failures, good and bad
    explanations, ``n_gallery`` images each."""
    from ..comparison import compare_variants
    from ..data.layout import discover

    samples = discover(folder, require_masks=True)
    names = list(names) if names else [Path(b).name for b in bundles]
    variants = yield from compare_variants(list(zip(names, bundles)), samples, n_picks, load=state.segmenter)
    galleries = {}
    if gallery:
        from ..xai.gallery import variant_galleries

        galleries = yield from variant_galleries(variants, samples, state.segmenter, gallery, n_gallery)
    return {
        "variants": [v.as_dict() for v in variants],
        "galleries": galleries,
        "folder": str(folder),
        "images": {s.id: str(s.image) for s in samples},
        "masks": {s.id: str(s.mask) for s in samples},
        "device": state.device,
        "card": {"variant": "compare", "name": f"{len(bundles)} model(s) on {len(samples)} images"},
    }


OPS: dict[str, Callable[..., Generator]] = {
    "info": op_info, "segment": op_segment, "explain": op_explain, "compare": op_compare, "compare_folder": op_compare_folder,
    "rank": op_rank, "finetune": op_finetune,
}
"""The operations every worker runs. Tests add their own (a job that sleeps, one that
crashes) through :class:`~.protocol.Hello` ``extra_ops``; none ship here."""
