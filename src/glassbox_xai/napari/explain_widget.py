"""The Explain dock widget: confidence, saliency, integrated gradients, Grad-CAM for every
layer and the attention coefficients, each pushed as an image layer aligned with the photograph."""

import napari
import numpy as np
from magicgui.widgets import ComboBox, Select, create_widget

from ..xai import METHODS
from . import common
from .common import JobWidget
from .layers import TARGET_CHOICES, faithfulness_html, map_style, stack_gradcam
from .segment_widget import checked_inputs

METHOD_LABELS = {
    "confidence": "superpixel confidence",
    "saliency": "saliency (logits)",
    "saliency-sigmoid": "saliency (sigmoid)",
    "ig": "integrated gradients",
    "gradcam": "Grad-CAM and attention",
}


class ExplainWidget(JobWidget):
    """Explain why the model drew the boundary it drew, for a chosen target region."""

    op = "explain"
    run_text = "Explain"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._image, self._truth = common.layer_pickers()
        self._methods = Select(label="methods", choices=[(METHOD_LABELS[m], m) for m in METHODS], value=list(METHODS))
        self._target = ComboBox(label="target", choices=TARGET_CHOICES, value="prediction")
        self._drawn = create_widget(annotation=napari.layers.Layer, label="drawn region", options={"nullable": True})
        super().__init__(viewer, [self._image, self._truth, self._methods, self._target, self._drawn])
        self._target.changed.connect(lambda value: setattr(self._drawn, "visible", value == "drawn region"))
        self._drawn.visible = False
        self._methods.native.setMaximumHeight(100)
        self._gradcam_names: list[str] = []
        viewer.dims.events.current_step.connect(self._show_layer_name)

    def request(self):
        rgb, truth = checked_inputs(self._image.value, self._truth.value)  # ValueError: JobWidget.run tells the user
        target = self._target_value(rgb.shape[:2], truth)
        methods = tuple(self._methods.value)
        if not methods:
            common.error("choose at least one method")
            return None
        return self._image.value, {"image": rgb, "methods": methods, "target": target, "truth": truth}

    def _target_value(self, shape, truth):
        choice = self._target.value
        if choice == "truth" and truth is None:
            raise ValueError("the ground-truth target needs a ground truth layer; choose one above")
        if choice != "drawn region":
            return choice
        layer = self._drawn.value
        if layer is None:
            raise ValueError("choose the Labels or Shapes layer you drew the region in")
        if isinstance(layer, napari.layers.Shapes):
            mask = layer.to_labels(labels_shape=shape) > 0
        elif isinstance(layer, napari.layers.Labels):
            mask = np.asarray(layer.data) > 0
        else:
            raise ValueError(f"layer '{layer.name}' is a {type(layer).__name__}; draw the region in a Labels or Shapes layer")
        if mask.shape != tuple(shape):
            raise ValueError(f"drawn region '{layer.name}' is {mask.shape}, but the image is {tuple(shape)}; expected the same size")
        if not mask.any():
            raise ValueError(f"drawn region '{layer.name}' is empty; paint or draw the region to explain")
        return mask

    def show_result(self, layer, result: dict) -> None:
        variant = result["card"]["variant"]
        step = result["step"]
        scale = tuple(s * step for s in layer.scale[-2:])
        align = {"scale": scale, "translate": tuple(layer.translate[-2:])}
        maps = dict(result["maps"])
        stack, names = stack_gradcam(maps, result["stages"])
        for name, values in maps.items():
            self._put(f"{layer.name} {name} ({variant})", values, map_style(name, values), align)
        if stack is not None:
            self._gradcam_names = names
            self._put(f"{layer.name} Grad-CAM by layer ({variant})", stack, map_style("gradcam", stack),
                      {"scale": (1.0, *scale), "translate": (0.0, *align["translate"])}, metadata={"layers": names})
            self._show_layer_name()
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
        self._info.value = faithfulness_html(result["faithfulness"]) + f"<p>time: {seconds}</p>"

    def _put(self, name: str, data: np.ndarray, style: dict, align: dict, metadata: dict | None = None) -> None:
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data = data
            layer.contrast_limits = style["contrast_limits"]
        else:
            self._viewer.add_image(data, name=name, metadata=metadata or {}, **style, **align)

    def _show_layer_name(self, event=None) -> None:
        if self._gradcam_names and self._viewer.dims.ndim == 3:
            index = int(self._viewer.dims.current_step[0])
            if 0 <= index < len(self._gradcam_names):
                self._status.value = f"Grad-CAM slider at {self._gradcam_names[index]}"
