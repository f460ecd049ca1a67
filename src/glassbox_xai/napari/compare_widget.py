"""The Compare dock widget: all variants on one image, as coloured outlines over the
photograph, with their metrics side by side when a ground truth is chosen; or all
variants over a folder with masks: the metric table, the pooled confusion matrices,
the best, typical and worst images by Dice, and the galleries (failures, good and bad
explanations), each image opening with its outlines."""

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    ComboBox,
    FileEdit,
    Label,
    PushButton,
    Select,
)
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QSizePolicy

from ..data.io import MaskError
from ..data.layout import NoImagesError, discover
from ..model import versions
from ..model.registry import VARIANT_NAMES, installed_bundles
from . import common
from .common import JobWidget
from .io_hooks import read_photos
from .layers import (
    case_choices,
    comparison_html,
    folder_comparison_html,
    gallery_html,
    gallery_items,
    variant_colors,
)
from .segment_widget import checked_inputs

FOLDER_OP = "compare_folder"
NO_CASE = ("choose an image to open…", None)
GALLERY_MAPS = [("no galleries", None), ("Grad-CAM, last decoder layer", "gradcam"), ("HiRes-CAM, last decoder layer", "hirescam"),
                ("Grad-CAM++, last decoder layer", "gradcam++"), ("Score-CAM, last decoder layer", "scorecam"), ("saliency", "saliency")]
GALLERY_TIPS = {"failures": "The images with the lowest Dice, worst first (id · Dice · share of the map inside the expert mask): "
                            "click one to open it",
                "good explanations": "The images whose map puts the largest share of its attribution inside the expert mask "
                                     "(id · Dice · that share): click one to open it",
                "bad explanations": "The images whose map puts the smallest share of its attribution inside the expert mask "
                                    "(id · Dice · that share): click one to open it"}


class CompareWidget(JobWidget):
    """Run several model variants on the same image, or over a folder with masks, and show where they differ.

    Controls, besides those of :class:`~glassbox_xai.napari.common.JobWidget` (no model
    picker: ``variants`` chooses the models; ``run_button`` compares on the chosen image):
        image: the photograph to compare on (an image layer picker).
        truth: the optional expert mask (a Labels layer picker); with one, ``info`` shows the metrics.
        variants: the models to compare (shipped variants and fine-tuned versions).
        extra_bundle: one more model bundle folder to compare with them.
        folder: a folder of photographs with their masks, to compare over.
        gallery_map: the explanation that sorts the folder's images into the galleries.
        compare_folder_button: compares over the folder (:meth:`compare_folder`).
        cases: the best, typical and worst images of the last folder comparison; choosing one opens it.
        galleries: the gallery lists (failures, good and bad explanations), a dict of one list per
            group; clicking a case opens it.
        folder_info: the metrics of the last folder comparison.
    """

    op = "compare"
    run_text = "Compare"
    scrollable = True

    def __init__(self, viewer: napari.viewer.Viewer):
        installed = [v for v in VARIANT_NAMES if v in installed_bundles()]  # shipped ones chosen; fine-tuned versions listed too
        self.image, self.truth = common.layer_pickers()
        self.variants = Select(label="variants", choices=lambda _widget: versions.model_names(), value=installed,
                               tooltip="The models to compare (Ctrl+click to pick several): dice magenta, "
                                       "balanced yellow, recall cyan; fine-tuned versions too")
        self.extra_bundle = FileEdit(label="also a bundle", mode="d", value="",
                                     tooltip="Optional: one more model bundle folder to compare with the chosen variants")
        self.folder = FileEdit(label="folder with masks", mode="d", value="",
                               tooltip="A folder of photographs with their masks (<id>_segmentation.png beside them "
                                       "or in an ISIC _GroundTruth folder), to compare the models over all of them")
        self.compare_folder_button = PushButton(text="Compare on folder",
                                                tooltip="Run every chosen model on every image of the folder: mean metrics, "
                                                        "pooled confusion matrices, and the best, typical and worst images")
        self._case_list: list[tuple[str, tuple[int, str, str]]] = []
        self.cases = ComboBox(label="open", choices=self._case_choices, visible=False,
                              tooltip="Open one image of the folder comparison with its ground truth and "
                                      "every model's outline (the view moves to it)")
        self.gallery_map = ComboBox(label="galleries by", choices=GALLERY_MAPS, value="gradcam",
                                    tooltip="The explanation that sorts a folder's images into good and bad explanations "
                                            "(share of its attribution inside the expert mask), run on every image after the "
                                            "comparison; Grad-CAM is the cheapest. 'no galleries' skips it")
        self._gallery_ids: dict[str, list[tuple[str, str]]] = {}
        self.galleries = {group: Select(label=group, choices=self._gallery_choices(group), visible=False, tooltip=tip)
                          for group, tip in GALLERY_TIPS.items()}
        self.folder_info = Label(label="", value="", tooltip="Metrics of the last folder comparison")
        super().__init__(viewer, [self.image, self.truth, self.variants, self.extra_bundle], model_picker=False)
        self.insert(self.index(self.run_button) + 1, self.folder)
        self.insert(self.index(self.folder) + 1, self.gallery_map)
        self.insert(self.index(self.gallery_map) + 1, self.compare_folder_button)
        self.insert(self.index(self.info), self.cases)
        for group, listed in self.galleries.items():
            self.insert(self.index(self.info), listed)
            listed.native.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            listed.native.setMaximumHeight(100)
            listed.native.itemClicked.connect(lambda item, group=group: self._on_gallery_click(group, item))
        self.insert(self.index(self.info), self.folder_info)
        for html in (self.folder_info, self.info):  # tables use the dock's whole width, not only the value column
            labeled = html._labeled_widget()
            if labeled is not None:
                labeled._label_widget.visible = False
            html.native.setAlignment(Qt.AlignLeft | Qt.AlignTop)
            html.native.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.variants.native.setMaximumHeight(90)  # a short list: no empty box in the scrolling dock
        self.compare_folder_button.clicked.connect(self.compare_folder)
        self.cases.changed.connect(self._on_case)
        self._folder_result: dict | None = None
        self._case_bundles: list[tuple[str, Path]] | None = None

    def _bundles(self) -> list[tuple[str, Path]]:
        if self._case_bundles is not None:
            return self._case_bundles
        chosen = [(name, versions.bundle_for(name)) for name in self.variants.value]
        if str(self.extra_bundle.value) not in ("", "."):
            chosen.append((Path(self.extra_bundle.value).name, Path(self.extra_bundle.value)))
        return chosen

    def run(self) -> None:
        """Compare the chosen variants on the chosen image."""
        self.op = "compare"
        self._start()

    def compare_folder(self) -> None:
        """Compare the chosen variants over every image of the chosen folder (each needs its mask)."""
        self.op = FOLDER_OP
        self._start()

    def _start(self) -> None:
        super().run()
        self.compare_folder_button.enabled = self.cases.enabled = self._job is None

    def _on_finished(self) -> None:
        super()._on_finished()
        self.compare_folder_button.enabled = self.cases.enabled = True

    def request(self):
        bundles = self._bundles()
        if len(bundles) < 1:
            common.error("choose at least one variant, or a bundle folder, to compare")
            return None
        if self.op == FOLDER_OP:
            return self._folder_request(bundles)
        rgb, truth = checked_inputs(self.image.value, self.truth.value)  # ValueError: JobWidget.run tells the user
        return ("image", self.image.value, [n for n, _ in bundles]), {"image": rgb, "bundles": [str(p) for _, p in bundles], "truth": truth}

    def _folder_request(self, bundles: list[tuple[str, Path]]):
        folder = str(self.folder.value)
        if folder in ("", "."):
            common.error("choose a folder of photographs with their masks (<id>_segmentation.png) to compare on")
            return None
        try:
            discover(folder, require_masks=True)  # cheap, and says at once what is missing
        except (NoImagesError, MaskError) as exc:
            common.error(exc)
            return None
        kwargs = {"folder": folder, "bundles": [str(p) for _, p in bundles], "names": [n for n, _ in bundles],
                  "gallery": self.gallery_map.value}
        return ("folder", bundles), kwargs

    def show_result(self, context, result: dict) -> None:
        if context[0] == "folder":
            self._show_folder(context[1], result)
        else:
            self._show_outlines(context[1], context[2], result)

    def _show_outlines(self, layer, names: list[str], result: dict) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        align = {"scale": tuple(layer.scale[-2:]), "translate": tuple(layer.translate[-2:])}
        for name, color, res in zip(names, variant_colors(names), result["results"]):
            title = f"{layer.name} {name} outline"
            mask = res["mask"].astype(np.uint8)
            if title in self._viewer.layers:
                self._viewer.layers[title].data = mask
            else:
                colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: color})
                outline = self._viewer.add_labels(mask, name=title, colormap=colormap, opacity=1.0, **align)
                outline.contour = 3
        title = f"<p><b>{layer.name}</b></p>" if self._folder_result is not None else ""
        self.info.value = title + comparison_html(names, result["results"])

    def _show_folder(self, bundles: list[tuple[str, Path]], result: dict) -> None:
        self._folder_result = {**result, "bundles": bundles}
        self.folder_info.value = folder_comparison_html(result["variants"]) + gallery_html(result.get("galleries", {}))
        self.info.value = ""
        self._case_list = case_choices(result["variants"])
        self.cases.reset_choices()
        self.cases.value = None
        self.cases.visible = True
        self._gallery_ids = gallery_items(result.get("galleries", {}))
        for listed in self.galleries.values():
            listed.reset_choices()
            listed.visible = bool(result.get("galleries"))
        self.status.value = f"{result['card']['name']} compared on {result['device']}"

    def _case_choices(self, _widget=None) -> list:
        """The cases of the last folder comparison (a callable, so napari's ``reset_choices`` keeps them)."""
        return [NO_CASE, *self._case_list]

    def _gallery_choices(self, group: str):
        """The cases of one gallery group (a callable, so napari's ``reset_choices`` keeps them)."""
        return lambda _widget=None: [label for label, _ in self._gallery_ids.get(group, [])]  # unique: they name the variant

    def _on_gallery_click(self, group: str, item) -> None:
        """A click on a gallery case opens it (again, too: a second click on the same case reopens it)."""
        if self._folder_result is None:
            return
        if self._job is not None:
            common.error("wait for the running job to finish (or cancel it), then choose the image again")
            return
        self.open_case(self._gallery_ids[group][self.galleries[group].native.row(item)][1])

    def _on_case(self, value) -> None:
        if value is None or self._folder_result is None:
            return
        if self._job is not None:
            common.error("wait for the running job to finish (or cancel it), then choose the image again")
            return
        self.open_case(value[2])

    def open_case(self, image_id: str) -> None:
        """Open one image of the last folder comparison with its ground truth, and compare the
        same models on it (their outlines appear over it)."""
        result = self._folder_result
        image, truth = self._add_photo(Path(result["images"][image_id]))
        self.image.reset_choices()
        self.truth.reset_choices()
        self.image.value, self.truth.value = image, truth
        self._case_bundles = result["bundles"]
        try:
            self.run()
        finally:
            self._case_bundles = None

    def _add_photo(self, photo: Path):
        """The image and ground-truth layers of a photograph, as the reader makes them (its mask
        found by the same ``discover`` the comparison used), added unless already open. Every
        layer of other images is hidden and the view fits the photograph, whatever the size of
        what was open before."""
        layers = self._viewer.layers
        for layer in layers:
            if not _of_image(layer.name, photo.stem):
                layer.visible = False
        tuples = [t for t in read_photos(str(photo)) if t[1]["name"] not in layers]
        truth_name = f"{photo.stem} ground truth"
        for data, meta, kind in tuples:
            getattr(self._viewer, f"add_{kind}")(data, **meta)
        for layer in layers:
            if layer.name in (photo.stem, truth_name) or (_of_image(layer.name, photo.stem) and layer.name.endswith(" outline")):
                layer.visible = True  # its other layers (maps, probabilities) stay as the user left them
        _fit_view(self._viewer, layers[photo.stem])
        return layers[photo.stem], next((layer for layer in layers if layer.name == truth_name), None)


def _fit_view(viewer, layer, margin: float = 0.05) -> None:
    """Centre the 2-D view on one layer and zoom so it fills the canvas, whatever else is open.

    napari 0.9.2's ``reset_view(layers=...)`` raises IndexError when another layer has
    more dimensions (an Explain Grad-CAM stack); then the camera is set from the
    layer's extent, as napari would; napari before 0.9 fits every layer instead.
    """
    try:
        viewer.reset_view(layers=[layer])
        return
    except TypeError:  # napari before 0.9: no ``layers`` argument
        viewer.reset_view()
        return
    except IndexError:
        pass
    low, high = np.asarray(layer.extent.world)[:, -2:]
    size = np.where(np.isclose(high - low, 0), 1.0, high - low)
    viewer.scene.camera.center = tuple((low + high) / 2)
    viewer.scene.camera.zoom = (1 - margin) * float(np.min(np.asarray(viewer.canvas.size) / size))


def _of_image(layer_name: str, image_id: str) -> bool:
    """Whether a layer belongs to an image: the photograph itself, its ground truth, its outlines."""
    return layer_name == image_id or layer_name.startswith(f"{image_id} ")
