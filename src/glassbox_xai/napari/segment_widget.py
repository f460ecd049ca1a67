"""The Segment dock widget: run a model variant (or a bundle on disk) on an image layer
in the model worker process, and push the prediction and probability layers."""


import weakref
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, FloatSlider, Label, ProgressBar, PushButton, create_widget
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning

from ..figures import DISCLAIMER
from ..model.registry import VARIANT_NAMES, NoTrainedModelError, installed_bundles, resolve_bundle
from ..worker.client import JobCancelled, ModelWorker, WorkerError
from .layers import LESION_COLOR, image_for_model, metrics_html, prediction_name, probability_name, truth_for_image

BUNDLE_ON_DISK = "bundle on disk…"
_workers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def worker_for(viewer) -> ModelWorker:
    """The model worker shared by every GlassBox widget of one viewer (started on first use)."""
    if viewer not in _workers:
        _workers[viewer] = ModelWorker()
    return _workers[viewer]


def model_choices() -> list[str]:
    """Installed variants first, then the option to pick a bundle folder."""
    installed = installed_bundles()
    return [v for v in VARIANT_NAMES if v in installed] + [BUNDLE_ON_DISK]


@thread_worker
def _run_job(worker: ModelWorker, op: str, kwargs: dict):
    """Run a worker job. Expected failures come back as ``{"failed": WorkerError}``, not
    raised nor returned bare: superqt re-raises either into napari's error dialog."""
    try:
        result = yield from worker.run(op, **kwargs)
    except WorkerError as exc:
        return {"failed": exc}
    return result


class SegmentWidget(Container):
    """Segment the chosen image layer with a model variant; shows metrics when a ground truth is chosen."""

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self._viewer = viewer
        self._image = create_widget(annotation="napari.layers.Image", label="image")
        self._truth = create_widget(annotation="napari.layers.Labels", label="ground truth", options={"nullable": True})
        self._model = ComboBox(label="model", choices=model_choices())
        self._bundle = FileEdit(label="bundle folder", mode="d", visible=self._model.value == BUNDLE_ON_DISK)
        self._threshold = FloatSlider(label="threshold", min=0.05, max=0.95, step=0.01, value=0.5)
        self._run = PushButton(text="Segment")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = ProgressBar(label="progress", value=0, max=1, visible=False)
        self._status = Label(label="", value=f"<i>{DISCLAIMER}</i>")  # replaced by run status; metrics repeat it
        self._metrics = Label(label="", value="")
        self.extend([self._image, self._truth, self._model, self._bundle, self._threshold, self._run, self._cancel,
                     self._progress, self._status, self._metrics])
        self._model.changed.connect(lambda value: setattr(self._bundle, "visible", value == BUNDLE_ON_DISK))
        self._run.clicked.connect(self.run)
        self._cancel.clicked.connect(self.cancel)
        self._job = None
        self.result: dict | None = None
        self.native.setMaximumWidth(440)

    def bundle_path(self) -> Path:
        """The bundle folder the current choice points to."""
        if self._model.value == BUNDLE_ON_DISK:
            path = Path(self._bundle.value)
            if str(self._bundle.value) in ("", "."):
                raise NoTrainedModelError("choose a model bundle folder (it holds model.keras, config.json and card.json)")
            return path
        return resolve_bundle(self._model.value)

    def run(self) -> None:
        """Check the inputs and start segmentation in the worker (the viewer stays responsive)."""
        layer = self._image.value
        if layer is None:
            show_error("GlassBox: open a dermoscopy photograph first (File > Open), then choose it as the image.")
            return
        try:
            rgb, notes = image_for_model(layer.data, layer.name)
            truth_layer = self._truth.value
            truth = truth_for_image(truth_layer.data, rgb.shape[:2], truth_layer.name) if truth_layer is not None else None
            bundle = self.bundle_path()
        except (ValueError, NoTrainedModelError) as exc:
            show_error(f"GlassBox: {exc}")
            return
        for note in notes:
            show_warning(f"GlassBox: {note}")
        self._start(layer, {"image": rgb, "bundle": str(bundle), "threshold": float(self._threshold.value), "truth": truth})

    def cancel(self) -> None:
        """Stop the running job at once."""
        worker_for(self._viewer).cancel()

    def _start(self, layer, kwargs: dict) -> None:
        self._run.enabled, self._cancel.enabled = False, True
        self._progress.visible, self._progress.value = True, 0
        self._status.value = "starting the model worker…" if not worker_for(self._viewer).alive else "segmenting…"
        job = _run_job(worker_for(self._viewer), "segment", kwargs)
        job.yielded.connect(self._on_progress)
        job.returned.connect(lambda result: self._on_error(result["failed"]) if "failed" in result else self._on_result(layer, result))
        job.errored.connect(self._on_error)
        job.finished.connect(self._on_finished)
        self._job = job
        job.start()

    def _on_progress(self, progress) -> None:
        self._progress.max = max(progress.total, 1)
        self._progress.value = progress.done
        self._status.value = progress.message

    def _on_result(self, layer, result: dict) -> None:
        variant = result["card"]["variant"]
        apply_result(self._viewer, layer, result, variant)
        self.result = result
        self._status.value = f"model {result['card']['name'] or variant} ran on {result['device']}, threshold {result['threshold']:.2f}"
        self._metrics.value = metrics_html(result["metrics"], result["confusion"]) if "metrics" in result else f"<i>{DISCLAIMER}</i>"

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, JobCancelled):
            self._status.value = "cancelled"
            show_info("GlassBox: segmentation cancelled")
        elif isinstance(exc, WorkerError):
            self._status.value = "failed"
            show_error(f"GlassBox: {str(exc).splitlines()[0]}")
        else:
            show_error(f"GlassBox: unexpected error: {exc}")

    def _on_finished(self) -> None:
        self._run.enabled, self._cancel.enabled = True, False
        self._progress.visible = False
        self._job = None


def apply_result(viewer, image_layer, result: dict, variant: str) -> None:
    """Add or update the prediction (editable Labels) and probability layers, aligned with the image."""
    from napari.utils.colormaps import DirectLabelColormap

    align = {"scale": tuple(image_layer.scale[-2:]), "translate": tuple(image_layer.translate[-2:])}
    pred_name, prob_name = prediction_name(image_layer.name, variant), probability_name(image_layer.name, variant)
    mask = result["mask"].astype(np.uint8)
    if pred_name in viewer.layers:
        viewer.layers[pred_name].data = mask
    else:
        colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: LESION_COLOR})
        viewer.add_labels(mask, name=pred_name, opacity=0.45, colormap=colormap, **align)
    if prob_name in viewer.layers:
        viewer.layers[prob_name].data = result["probabilities"]
    else:
        viewer.add_image(result["probabilities"], name=prob_name, colormap="magma", contrast_limits=(0.0, 1.0),
                         blending="additive", opacity=0.5, visible=False, **align)
    viewer.layers.selection.active = viewer.layers[pred_name]
