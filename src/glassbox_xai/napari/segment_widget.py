"""The Segment dock widget: run a model variant (or a bundle on disk) on an image layer
in the model worker process, and push the prediction and probability layers."""

import napari
import numpy as np
from magicgui.widgets import CheckBox, FloatSlider, PushButton
from napari.utils.notifications import show_warning

from ..figures import DISCLAIMER
from . import common
from .common import BUNDLE_ON_DISK, JobWidget, worker_for  # noqa: F401  (re-exported for tests and scripts)
from .layers import LESION_COLOR, image_for_model, metrics_html, prediction_name, probability_name, truth_for_image
from .preprocess import PreprocessPanel


def checked_inputs(image_layer, truth_layer) -> tuple[np.ndarray, np.ndarray | None]:
    """The image as RGB uint8 (conversions announced) and the ground truth as a mask, or errors."""
    if image_layer is None:
        raise ValueError("open a dermoscopy photograph first (File > Open), then choose it as the image.")
    rgb, notes = image_for_model(image_layer.data, image_layer.name)
    for note in notes:
        show_warning(f"GlassBox: {note}")
    truth = truth_for_image(truth_layer.data, rgb.shape[:2], truth_layer.name) if truth_layer is not None else None
    return rgb, truth


class SegmentWidget(JobWidget):
    """Segment the chosen image layer with a model variant; shows metrics when a ground truth is chosen."""

    op = "segment"
    run_text = "Segment"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._image, self._truth = common.layer_pickers()
        self._threshold = FloatSlider(label="threshold", min=0.05, max=0.95, step=0.01, value=0.5)
        self._use_preprocess = CheckBox(text="preprocess before segmenting", value=False)
        self._preprocess = PreprocessPanel()
        self._preview = PushButton(text="Preview preprocessing")
        super().__init__(viewer, [self._image, self._truth, self._threshold, self._use_preprocess, self._preprocess, self._preview])
        self._preprocess.visible = self._preview.visible = False
        self._use_preprocess.changed.connect(self._toggle_preprocess)
        self._preview.clicked.connect(self.preview)
        self._metrics = self._info

    def _toggle_preprocess(self, on: bool) -> None:
        self._preprocess.visible = self._preview.visible = on

    def _prepared(self, rgb: np.ndarray) -> np.ndarray:
        return self._preprocess.apply(rgb) if self._use_preprocess.value else rgb

    def preview(self) -> None:
        """Show the preprocessed copy of the image as a layer (the original is untouched)."""
        try:
            rgb, _ = checked_inputs(self._image.value, None)
            shown = self._prepared(rgb)
        except ValueError as exc:
            common.error(exc)
            return
        layer = self._image.value
        name = f"{layer.name} preprocessed"
        if name in self._viewer.layers:
            self._viewer.layers[name].data = shown
        else:
            self._viewer.add_image(shown, name=name, rgb=True, scale=tuple(layer.scale[-2:]), translate=tuple(layer.translate[-2:]))

    def request(self):
        rgb, truth = checked_inputs(self._image.value, self._truth.value)  # ValueError: JobWidget.run tells the user
        rgb = self._prepared(rgb)
        return self._image.value, {"image": rgb, "threshold": float(self._threshold.value), "truth": truth}

    def show_result(self, layer, result: dict) -> None:
        apply_result(self._viewer, layer, result, result["card"]["variant"])
        self._status.value += f", threshold {result['threshold']:.2f}"
        self._metrics.value = metrics_html(result["metrics"], result["confusion"]) if "metrics" in result else f"<i>{DISCLAIMER}</i>"


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
        viewer.layers.selection.active = viewer.layers[pred_name]  # ready to edit; not re-selected on updates
    if prob_name in viewer.layers:
        viewer.layers[prob_name].data = result["probabilities"]
    else:
        viewer.add_image(result["probabilities"], name=prob_name, colormap="magma", contrast_limits=(0.0, 1.0),
                         blending="additive", opacity=0.5, visible=False, **align)
