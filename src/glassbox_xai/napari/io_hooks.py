"""npe2 reader and writer: a photograph opens with its expert mask as a ground-truth
layer; a ``glassbox explain`` folder (or its ``maps.npz``) opens as the photograph with
every map over it; a Labels layer saves as an ISIC mask (8-bit 0/255 PNG at the image's size)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..data.io import IMAGE_EXTENSIONS, ImageReadError, MaskError, read_image, read_mask, write_mask
from ..data.layout import MASK_SUFFIX, NoImagesError, discover


def get_reader(path: str | list[str]) -> Callable | None:
    """A reader for dermoscopy photographs, for a folder of them (opened in the Review
    widget, image by image), or for a ``glassbox explain`` folder of one photograph
    (:mod:`.explain_reader`); ``None`` for masks and other files."""
    from .explain_reader import explanation_folder

    if not isinstance(path, list) and explanation_folder(path) is not None:
        return read_explanation
    if isinstance(path, list):
        return None if any(_not_photo(p) for p in path) else read_photos
    if Path(path).is_dir():
        return read_folder if _holds_photos(path) else None
    return None if _not_photo(path) else read_photos


def _holds_photos(folder: str) -> bool:
    try:
        discover(folder)
    except (NoImagesError, OSError):
        return False
    return True


def read_folder(path: str | list[str]) -> list[tuple]:
    """Open a folder (ISIC layout or flat) as a browsable set: the Review widget docks
    with it, shows image 1 of N (or where the last session stopped) and its mask, and
    adds the layers itself; the reader itself adds none."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        raise NoImagesError(f"open {path} from a napari window to browse it")
    folder = path[0] if isinstance(path, list) else path
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Review and correct")
    widget.open_folder(folder)
    return [(None,)]


def read_explanation(path: str | list[str]) -> list[tuple]:
    """The photograph of a ``glassbox explain`` folder with every map laid over it."""
    from .explain_reader import explanation_layers

    return explanation_layers(path[0] if isinstance(path, list) else path)


def _not_photo(path: str) -> bool:
    p = Path(path)
    full_map = p.parent.name == "maps" and (p.parent.parent / "explain.json").is_file()  # --save-maps float TIFFs: napari's own reader
    return p.is_dir() or full_map or p.suffix.lower() not in IMAGE_EXTENSIONS or p.stem.endswith((MASK_SUFFIX, "_superpixels"))


def truth_contour(shape: tuple[int, int]) -> int:
    """Contour width (pixels) of a ground-truth layer: an outline that leaves the lesion
    visible, thick enough to see at full view on 12 MP photographs too."""
    return max(2, round(max(shape[:2]) / 500))


def truth_outline(mask: np.ndarray, width: int | None = None) -> np.ndarray:
    """The inner band (``width`` pixels, default :func:`truth_contour`) of a mask's lesion as a
    uint8 0/1 array: what napari's Labels ``contour`` draws, computed once (napari redoes it
    on the GUI thread at every refresh, 1-6 s on a 10 MP photograph)."""
    import cv2

    mask = np.asarray(mask) > 0
    width = truth_contour(mask.shape) if width is None else width
    kernel = np.ones((2 * width - 1, 2 * width - 1), np.uint8)
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return (mask & (inner == 0)).astype(np.uint8)


def _outline_when_added(path: Path, width: int) -> None:
    """Draw the ground-truth layer of ``path`` as a contour once napari has added it (a
    reader returns layer data, and ``contour`` is not a Labels argument)."""
    import napari

    viewer = napari.current_viewer()
    if viewer is None:
        return

    def outline(event) -> None:
        layer = event.value
        if layer.metadata.get("path") == str(path) and hasattr(layer, "contour"):
            layer.contour = width
            viewer.layers.events.inserted.disconnect(outline)

    viewer.layers.events.inserted.connect(outline)


def read_photos(path: str | list[str]) -> list[tuple]:
    """Image layer per photograph, plus a ground-truth Labels layer when it has a mask (drawn as
    a contour over the photograph, not a fill that hides the lesion). The mask is found as every
    GlassBox command finds it (:func:`~glassbox_xai.data.layout.discover`): beside the photograph,
    or in the ISIC ``_GroundTruth`` folder beside its ``_Input`` folder."""
    layers = []
    for item in [path] if isinstance(path, str) else path:
        photo = Path(item)
        image = read_image(photo)
        layers.append((image, {"name": photo.stem, "rgb": True, "metadata": {"path": str(photo)}}, "image"))
        mask_path = discover(photo)[0].mask
        if mask_path is not None:
            try:
                mask = read_mask(mask_path, expected_shape=image.shape[:2])
            except MaskError as exc:
                from napari.utils.notifications import show_warning

                show_warning(f"GlassBox: ground truth not loaded: {exc}")
                continue
            _outline_when_added(mask_path, truth_contour(image.shape))
            layers.append((mask.astype(np.uint8), {"name": f"{photo.stem} ground truth", "opacity": 0.9, "metadata": {"path": str(mask_path)}}, "labels"))
    return layers


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Save a Labels layer as ``<name>_segmentation.png`` (lesion = any label > 0), atomically."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        target = target.with_suffix(".png")
    array = np.asarray(data)
    if array.ndim != 2:
        raise ImageReadError(f"cannot save layer '{meta.get('name')}' as a mask: expected a 2-D Labels layer, got shape {array.shape}")
    return [str(write_mask(target, array > 0))]
