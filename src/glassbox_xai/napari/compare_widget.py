"""The Compare dock widget: all variants on one image, as coloured outlines over the
photograph, with their metrics side by side when a ground truth is chosen."""

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import FileEdit, Select, create_widget

from ..model.registry import VARIANT_NAMES, installed_bundles
from . import common
from .common import JobWidget
from .layers import EXTRA_COLORS, VARIANT_COLORS, comparison_html
from .segment_widget import checked_inputs


class CompareWidget(JobWidget):
    """Run several model variants on the same image and show where their boundaries differ."""

    op = "compare"
    run_text = "Compare"

    def __init__(self, viewer: napari.viewer.Viewer):
        installed = [v for v in VARIANT_NAMES if v in installed_bundles()]
        self._image = create_widget(annotation=napari.layers.Image, label="image")
        self._truth = create_widget(annotation=napari.layers.Labels, label="ground truth", options={"nullable": True})
        self._variants = Select(label="variants", choices=installed, value=installed)
        self._extra = FileEdit(label="also a bundle", mode="d", value="")
        super().__init__(viewer, [self._image, self._truth, self._variants, self._extra], model_picker=False)

    def _bundles(self) -> list[tuple[str, Path]]:
        installed = installed_bundles()
        chosen = [(name, installed[name][0]) for name in self._variants.value]
        if str(self._extra.value) not in ("", "."):
            chosen.append((Path(self._extra.value).name, Path(self._extra.value)))
        return chosen

    def request(self):
        rgb, truth = checked_inputs(self._image.value, self._truth.value)  # ValueError: JobWidget.run tells the user
        bundles = self._bundles()
        if len(bundles) < 1:
            common.error("choose at least one variant, or a bundle folder, to compare")
            return None
        return (self._image.value, [n for n, _ in bundles]), {"image": rgb, "bundles": [str(p) for _, p in bundles], "truth": truth}

    def show_result(self, context, result: dict) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        layer, names = context
        align = {"scale": tuple(layer.scale[-2:]), "translate": tuple(layer.translate[-2:])}
        for i, (name, res) in enumerate(zip(names, result["results"])):
            color = VARIANT_COLORS.get(name, EXTRA_COLORS[i % len(EXTRA_COLORS)])
            title = f"{layer.name} {name} outline"
            mask = res["mask"].astype(np.uint8)
            if title in self._viewer.layers:
                self._viewer.layers[title].data = mask
            else:
                colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: color})
                outline = self._viewer.add_labels(mask, name=title, colormap=colormap, opacity=1.0, **align)
                outline.contour = 3
        self._info.value = comparison_html(names, result["results"])
