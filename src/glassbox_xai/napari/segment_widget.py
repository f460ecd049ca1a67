"""The Segment dock widget: run a model variant (or a bundle on disk) on an image layer
in the model worker process, and push the prediction and probability layers."""

import napari
import numpy as np
from magicgui.widgets import CheckBox, FloatSlider, Label, PushButton
from napari.utils.notifications import show_warning

from ..figures import DISCLAIMER
from ..model.card import BundleError, ModelCard, read_card
from ..model.registry import NoTrainedModelError
from . import common
from .common import BUNDLE_ON_DISK, JobWidget, worker_for  # noqa: F401  (re-exported for tests and scripts)
from .layers import image_for_model, map_metadata, map_style, metrics_html, model_label, prediction_name, probability_name, truth_for_image, variant_color
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


def card_settings(card: ModelCard) -> str:
    """The inference settings a model card sets, as the widget shows them."""
    options = card.inference or {}
    on_off = lambda key: "on" if options.get(key, False) else "off"  # noqa: E731
    return f"model card: threshold {card.threshold:.2f}, flip TTA {on_off('tta')}, postprocess {on_off('postprocess')}"


def truth_for_layer(image_layer, labels_layers) -> object | None:
    """The ground-truth Labels layer that belongs to ``image_layer`` (named ``<image> ground
    truth``, as the reader and the Review widget name it), or ``None``."""
    if image_layer is None:
        return None
    wanted = f"{image_layer.name} ground truth"
    return next((layer for layer in labels_layers if layer.name == wanted), None)


class SegmentWidget(JobWidget):
    """Segment the chosen image layer with a model variant; shows metrics when a ground truth is chosen.

    The threshold starts at the chosen model's card value and follows the model picker,
    and test-time augmentation and postprocessing are the card's, so the widget gives the
    same mask as ``glassbox predict`` with the same model.

    Controls, besides those of :class:`~glassbox_xai.napari.common.JobWidget`:
        image: the photograph to segment (an image layer picker).
        truth: the optional expert mask (a Labels layer picker); with one, ``info`` shows the metrics.
        threshold: the probability slider; starts at the chosen model's card value.
        card_line: the settings the chosen model's card sets (threshold, flip TTA, postprocessing).
        use_preprocess: segment a preprocessed copy of the photograph instead of the photograph.
        preprocess: the preprocessing panel (:meth:`PreprocessPanel.set` turns a technique on).
        preview_button: shows the preprocessed copy as a layer (:meth:`preview`).
    """

    op = "segment"
    run_text = "Segment"

    def __init__(self, viewer: napari.viewer.Viewer):
        self.image, self.truth = common.layer_pickers()
        self.threshold = FloatSlider(label="threshold", min=0.05, max=0.95, step=0.01, value=0.5)
        self.card_line = Label(label="", value="")
        self.use_preprocess = CheckBox(text="preprocess before segmenting", value=False)
        self.preprocess = PreprocessPanel()
        self.preview_button = PushButton(text="Preview preprocessing")
        super().__init__(viewer, [self.image, self.truth, self.threshold, self.card_line, self.use_preprocess,
                                  self.preprocess, self.preview_button])
        self._card: ModelCard | None = None
        self.preprocess.visible = self.preview_button.visible = False
        self.use_preprocess.changed.connect(self._toggle_preprocess)
        self.preview_button.clicked.connect(self.preview)
        self.model.changed.connect(self._follow_model)
        self.bundle.changed.connect(self._follow_model)
        self.image.changed.connect(self._pick_truth)
        viewer.layers.events.inserted.connect(self._pick_truth_if_empty)
        self._add_tooltips()
        self._follow_model()
        self._pick_truth()

    def _add_tooltips(self) -> None:
        tips = {
            self.image: "The photograph to segment (an RGB or grayscale image layer).",
            self.truth: "Optional expert mask of the same size: with one, the metric table compares the prediction with it.",
            self.threshold: "Probability above which a pixel counts as lesion. Starts at the chosen model's card value "
                            "(the value `glassbox predict` uses); move it to trade recall for precision.",
            self.use_preprocess: "Apply photometric preprocessing (gamma, contrast, CLAHE...) to a copy of the image before segmenting.",
            self.preview_button: "Show the preprocessed copy as a new image layer; the photograph itself is not changed.",
            self.run_button: "Segment the chosen image with the chosen model in the model worker (napari stays responsive).",
            self.cancel_button: "Stop the running segmentation.",
            self.model: "The model: a shipped variant, a fine-tuned version, or a bundle folder on disk.",
            self.bundle: "A model bundle folder (holds model.keras, config.json and card.json).",
            self.progress: "Progress of the running job.",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip
        self.card_line.tooltip = "Settings the chosen model's card sets; the worker applies its test-time augmentation and postprocessing."

    def _follow_model(self, _value=None) -> None:
        """Take the threshold and inference options from the chosen model's card (no TensorFlow)."""
        try:
            self._card = read_card(self.bundle_path())
        except (BundleError, NoTrainedModelError, OSError):
            self._card = None
            self.card_line.value = "<small>model card: not readable yet (choose a model)</small>"
            return
        self.threshold.value = self._card.threshold
        self.card_line.value = f"<small>{card_settings(self._card)}</small>"

    def _pick_truth(self, _value=None) -> None:
        """Pre-select the ground truth that belongs to the chosen image, when there is one."""
        self.truth.reset_choices()
        match = truth_for_layer(self.image.value, [layer for layer in self._viewer.layers if isinstance(layer, napari.layers.Labels)])
        if match is not None:
            self.truth.value = match

    def _pick_truth_if_empty(self, _event=None) -> None:
        try:
            if self.truth.value is None:
                self.image.reset_choices()
                self._pick_truth()
        except RuntimeError as exc:  # the dock was closed and its Qt widgets deleted: nothing to update
            if "deleted" not in str(exc):
                raise

    def threshold_to_send(self) -> float | None:
        """The threshold to send: ``None`` (the card's own, exactly) while the slider shows the card's value."""
        value = float(self.threshold.value)
        if self._card is not None and abs(value - self._card.threshold) < self.threshold.step / 2:
            return None
        return value

    def _toggle_preprocess(self, on: bool) -> None:
        self.preprocess.visible = self.preview_button.visible = on

    def _prepared(self, rgb: np.ndarray) -> np.ndarray:
        return self.preprocess.apply(rgb) if self.use_preprocess.value else rgb

    def preview(self) -> None:
        """Show the preprocessed copy of the image as a layer (the original is untouched)."""
        try:
            rgb, _ = checked_inputs(self.image.value, None)
            shown = self._prepared(rgb)
        except ValueError as exc:
            common.error(exc)
            return
        layer = self.image.value
        name = f"{layer.name} preprocessed"
        if name in self._viewer.layers:
            self._viewer.layers[name].data = shown
        else:
            self._viewer.add_image(shown, name=name, rgb=True, scale=tuple(layer.scale[-2:]), translate=tuple(layer.translate[-2:]))

    def request(self):
        rgb, truth = checked_inputs(self.image.value, self.truth.value)  # ValueError: JobWidget.run tells the user
        rgb = self._prepared(rgb)
        return self.image.value, {"image": rgb, "threshold": self.threshold_to_send(), "truth": truth}

    def show_result(self, layer, result: dict) -> None:
        apply_result(self._viewer, layer, result, model_label(result))
        self.status.value += f", threshold {result['threshold']:.2f}"
        self.info.value = metrics_html(result["metrics"], result["confusion"]) if "metrics" in result else f"<i>{DISCLAIMER}</i>"


def apply_result(viewer, image_layer, result: dict, variant: str) -> None:
    """Add or update the prediction (editable Labels) and probability layers, aligned with the image."""
    from napari.utils.colormaps import DirectLabelColormap

    align = {"scale": tuple(image_layer.scale[-2:]), "translate": tuple(image_layer.translate[-2:])}
    pred_name, prob_name = prediction_name(image_layer.name, variant), probability_name(image_layer.name, variant)
    mask = result["mask"].astype(np.uint8)
    if pred_name in viewer.layers:
        viewer.layers[pred_name].data = mask
    else:
        colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: variant_color(variant)})
        viewer.add_labels(mask, name=pred_name, opacity=0.45, colormap=colormap, **align)
    if prob_name in viewer.layers:
        viewer.layers[prob_name].data = result["probabilities"]
    else:
        viewer.add_image(result["probabilities"], name=prob_name, **map_style("probability", result["probabilities"]),
                         metadata=map_metadata(image_layer.name, "probability", variant), visible=False, **align)
    viewer.layers.selection.active = viewer.layers[pred_name]  # the editable prediction, not the hidden probability
