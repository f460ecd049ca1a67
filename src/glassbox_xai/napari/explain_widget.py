"""The Explain dock widget: confidence, saliency, integrated gradients, Grad-CAM for every
layer and the attention coefficients, each pushed as an image layer aligned with the photograph.

One map is shown at a time (the newest, or the one selected in the layer list), with
napari's colour bar on the canvas and a legend in the dock that follows the selection."""

import napari
import numpy as np
from magicgui.widgets import ComboBox, Label, Select, create_widget
from qtpy.QtWidgets import QSizePolicy

from ..xai import METHODS
from ..xai.legend import LEGENDS, method_label
from . import common
from .common import JobWidget
from .layers import TARGET_CHOICES, faithfulness_html, legend_html, map_layer_name, map_metadata, map_style, model_label, stack_layers, stacked_families
from .segment_widget import checked_inputs

EXPLANATIONS = frozenset(LEGENDS) - {"probability"}  # the maps this widget makes and shows one at a time
NO_LEGEND = "<i>Select a map layer to see its colour scale and what it means.</i>"
TARGET_TIPS = {
    "prediction": "the region the model predicts as lesion",
    "truth": "the expert's lesion (needs a ground-truth layer)",
    "background": "the skin the model predicts as not lesion",
    "drawn region": "a region you paint in a Labels layer or draw in a Shapes layer",
}


class ExplainWidget(JobWidget):
    """Explain why the model drew the boundary it drew, for a chosen target region.

    Controls, besides those of :class:`~glassbox_xai.napari.common.JobWidget`:
        image: the photograph to explain (an image layer picker).
        truth: the optional expert mask (a Labels layer picker), needed by the ``truth`` target.
        methods: the explanations to compute, each becoming a map layer.
        target: the pixels whose score is explained (prediction, truth, background, drawn region).
        drawn_region: the Labels or Shapes layer holding the region, shown for the drawn-region target.
        legend: the colour scale and meaning of the selected map layer.
    """

    op = "explain"
    run_text = "Explain"
    scrollable = True

    def __init__(self, viewer: napari.viewer.Viewer):
        self.image, self.truth = common.layer_pickers()
        self.methods = Select(label="methods", choices=[(method_label(m), m) for m in METHODS], value=[m for m in METHODS if m != "scorecam"],
                              tooltip="The explanations to compute (Ctrl+click to pick several); each becomes a map layer. "
                                      "Score-CAM is not ticked at first: it runs the model once per channel, several times "
                                      "the cost of the rest")
        self.target = ComboBox(label="target", choices=TARGET_CHOICES, value="prediction",
                               tooltip="The pixels whose score is explained: " + "; ".join(f"{k}: {v}" for k, v in TARGET_TIPS.items()))
        self.drawn_region = create_widget(annotation=napari.layers.Layer, label="drawn region", options={"nullable": True})
        self.drawn_region.tooltip = "The Labels or Shapes layer holding the region to explain"
        self.legend = Label(label="", value=NO_LEGEND, tooltip="The colour scale and meaning of the selected map layer")
        super().__init__(viewer, [self.image, self.truth, self.methods, self.target, self.drawn_region])
        self.insert(self.index(self.info), self.legend)
        self.legend.native.setWordWrap(True)
        self.legend.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        self.target.changed.connect(lambda value: setattr(self.drawn_region, "visible", value == "drawn region"))
        self.drawn_region.visible = False
        self.methods.native.setMaximumHeight(100)
        viewer.dims.events.current_step.connect(self._on_step)
        viewer.layers.selection.events.active.connect(self._on_active)

    def request(self):
        rgb, truth = checked_inputs(self.image.value, self.truth.value)  # ValueError: JobWidget.run tells the user
        target = self._target_value(rgb.shape[:2], truth)
        methods = tuple(self.methods.value)
        if not methods:
            common.error("choose at least one method")
            return None
        return self.image.value, {"image": rgb, "methods": methods, "target": target, "truth": truth}

    def _target_value(self, shape, truth):
        choice = self.target.value
        if choice == "truth" and truth is None:
            raise ValueError("the ground-truth target needs a ground truth layer; choose one above")
        if choice != "drawn region":
            return choice
        layer = self.drawn_region.value
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
        variant = model_label(result)
        step = result["step"]
        scale = tuple(s * step for s in layer.scale[-2:])
        align = {"scale": scale, "translate": tuple(layer.translate[-2:])}
        maps = dict(result["maps"])
        stacks = {family: stack_layers(maps, result["stages"], family) for family in stacked_families()}
        newest = None
        for name, values in maps.items():
            newest = self._put(map_layer_name(layer.name, name, variant), values, map_style(name, values), align,
                               map_metadata(layer.name, name, variant, calibration=result.get("calibration")))
        for family, (stack, names) in stacks.items():
            if stack is not None:
                axes = {"scale": (1.0, *scale), "translate": (0.0, *align["translate"]), "axis_labels": (names[0], "-2", "-1")}
                newest = self._put(map_layer_name(layer.name, family, variant), stack, map_style(family, stack), axes,
                                   map_metadata(layer.name, family, variant, names))
        if newest is not None:
            self._viewer.layers.selection.active = newest  # shown alone, with its colour bar and legend
            self._show_only(newest)
        seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
        self.info.value = faithfulness_html(result["faithfulness"]) + f"<p>time: {seconds}</p>"

    def _put(self, name: str, data: np.ndarray, style: dict, align: dict, metadata: dict):
        """Update the map layer ``name`` in place, or add it; returns the layer."""
        if name in self._viewer.layers:
            layer = self._viewer.layers[name]
            layer.data = data
            layer.contrast_limits = style["contrast_limits"]
            layer.metadata.update(metadata)
            return layer
        return self._viewer.add_image(data, name=name, metadata=metadata, **style, **align)

    def _maps(self) -> list:
        return [layer for layer in self._viewer.layers if "glassbox_map" in layer.metadata]

    def _show_only(self, shown) -> None:
        """Show one map layer with its colour bar; hide the other maps (they would hide it or each other)."""
        for layer in self._maps():  # by name: napari hands plugins proxies, a new one per access
            layer.visible = layer.colorbar.visible = layer.name == shown.name
        self._show_legend(shown)

    def _on_active(self, event=None) -> None:
        active = self._viewer.layers.selection.active
        if active is None or "glassbox_map" not in active.metadata:
            return
        if active.metadata["glassbox_map"] in EXPLANATIONS:
            self._show_only(active)
        else:  # a map of another widget (Segment's hidden probability, selected as napari adds it): legend only
            self._show_legend(active)

    def _on_step(self, event=None) -> None:
        active = self._viewer.layers.selection.active
        shown = active if active is not None and "glassbox_map" in active.metadata else None
        for layer in self._maps():
            if "layers" in layer.metadata:
                self._name_slider(layer)
        if shown is not None:
            self._show_legend(shown)

    def _plane(self, layer) -> int | None:
        if "layers" not in layer.metadata or layer.ndim != 3:
            return None
        return int(np.clip(np.round(layer.world_to_data(self._viewer.dims.point)[0]), 0, layer.data.shape[0] - 1))

    def _name_slider(self, layer) -> None:
        """Label the slider with the network layer shown, so the name never goes stale."""
        plane = self._plane(layer)
        if plane is not None:
            name = layer.metadata["layers"][plane]
            if layer.axis_labels[0] != name:
                layer.axis_labels = (name, *layer.axis_labels[1:])

    def _show_legend(self, layer) -> None:
        if layer is None or layer.name not in self._viewer.layers:
            self.legend.value = NO_LEGEND
            return
        self._name_slider(layer)
        self.legend.value = legend_html(layer.metadata, layer.contrast_limits, self._plane(layer))
