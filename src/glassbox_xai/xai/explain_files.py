"""Explaining a photograph at a bounded working resolution, and writing the panel to
disk: one compressed store of every map (``maps.npz``, float16, at most ``STORE_SIDE``
px a side), overlay PNGs, Grad-CAM and HiRes-CAM sheets per stage, and a JSON of faithfulness numbers;
full-resolution float32 TIFF maps only on request.

Every attribution map is computed at the model's input resolution (128-256 px a side)
and only resized afterwards, so a 7,000 x 7,000 photograph holds no more information in
its maps than a 1,024 px copy does. The panel is therefore computed on a copy at most
``WORKING_SIDE`` px a side and stored at most ``STORE_SIDE`` px a side (still twice the
model's input or more); full-resolution maps are produced one at a time while they are
written, so memory stays bounded whatever the photograph's size.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Generator

import cv2
import numpy as np

from ..figures import DISCLAIMER
from ..inference import Progress
from .figures import map_figure, stage_sheet
from .map_store import STORE_NAME, write_maps
from .panel import Panel

WORKING_SIDE = 1024
"""Longest side, in pixels, of the copy a panel is computed on (photographs no larger are used as they are)."""

STORE_SIDE = 512
"""Longest side, in pixels, of the maps in ``maps.npz`` and of the photograph the figures show
(a 13-inch figure at 100 dpi gives each of its three panels about 400 px)."""

FULL_MAPS = "maps"
"""Folder of the full-resolution float32 TIFF maps, written only on request (``--save-maps``)."""

MIN_SIDE = 32
"""Shortest side, in pixels, the working copy shrinks a side to (a side already shorter is kept)."""

TIFF_OPTIONS = {"compression": "zlib", "compressionargs": {"level": 1}}
"""Full-resolution float maps barely compress (a 7,000 px map: 157 MB at zlib's default level 6, 156 MB at
level 1), and level 1 writes them twice as fast."""

PIECEWISE_CONSTANT = ("superpixel confidence",)
"""Maps resized with nearest-neighbour interpolation (region values, not smooth fields)."""


def slug(name: str) -> str:
    """A file-name-safe version of a map name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def working_shape(shape: tuple[int, int], side: int = WORKING_SIDE) -> tuple[int, int]:
    """(rows, cols) of the working copy: the aspect ratio kept, the longest side at most
    ``side``, and no side shrunk below ``MIN_SIDE`` px (so a 10 x 10,000 photograph keeps
    all its 10 rows instead of becoming one pixel high)."""
    rows, cols = int(shape[0]), int(shape[1])
    scale = min(1.0, side / max(rows, cols))
    return max(min(rows, MIN_SIDE), round(rows * scale)), max(min(cols, MIN_SIDE), round(cols * scale))


def to_working(image: np.ndarray, truth: np.ndarray | None = None, side: int = WORKING_SIDE,
               shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The photograph (area-averaged) and a mask of it (area fraction >= 0.5) at ``shape``,
    by default :func:`working_shape`; the arrays themselves when already that size."""
    rows, cols = shape or working_shape(image.shape[:2], side)
    if (rows, cols) == image.shape[:2]:
        return image, truth
    small = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)
    return small, None if truth is None else _shrink_mask(truth, (rows, cols))


def _shrink_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(np.asarray(mask, dtype=np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) >= 0.5


def explain_bounded(segmenter, image: np.ndarray, methods, target: str | np.ndarray = "prediction", truth: np.ndarray | None = None,
                    ig_steps: int = 32, baseline: str = "black", sanity: bool = False, side: int = WORKING_SIDE,
                    step: int | None = None) -> Generator[Progress, None, tuple[np.ndarray, Panel]]:
    """:func:`~glassbox_xai.xai.panel.explain` on a smaller copy of ``image``; returns the
    copy and the panel (every map has the copy's size).

    The copy is :func:`working_shape` (at most ``side`` px a side), or with an integer
    ``step`` exactly the shape of ``image[::step, ::step]`` (for callers that show maps
    with a layer scale of ``step``). A target given as a mask is shrunk with the image.
    """
    from .panel import explain

    rows, cols = image.shape[:2]
    shape = (-(-rows // step), -(-cols // step)) if step else working_shape((rows, cols), side)
    small, small_truth = to_working(image, truth, shape=shape)
    if isinstance(target, np.ndarray) and target.shape[:2] != small.shape[:2]:
        target = _shrink_mask(target, small.shape[:2])
    panel = yield from explain(segmenter, small, methods, target, small_truth, ig_steps, baseline, sanity=sanity)
    return small, panel


def resize_map(name: str, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float32 map resized to ``shape`` (rows, cols): area-averaged when it shrinks, bilinear
    when it grows, nearest-neighbour for region maps."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape == tuple(shape):
        return values
    shrinks = shape[0] <= values.shape[0] and shape[1] <= values.shape[1]
    interpolation = cv2.INTER_NEAREST if name in PIECEWISE_CONSTANT else cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR
    return cv2.resize(values, (int(shape[1]), int(shape[0])), interpolation=interpolation)


def write_panel(folder: str | Path, image: np.ndarray, panel: Panel, meta: dict, full_shape: tuple[int, int] | None = None) -> Path:
    """Write ``panel`` into ``folder``; return the folder.

    ``image`` is the photograph the panel was computed on. Every map goes into one
    ``maps.npz`` (:mod:`.map_store`) at :func:`working_shape` with ``STORE_SIDE``; the figures
    are drawn at that size too. With ``full_shape`` (rows, cols), usually the original
    photograph's, every map is also written as a float32 TIFF of that size under ``maps/``,
    one at a time, so at most one full-size map is in memory.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = working_shape(image.shape[:2], STORE_SIDE)
    shown, mask = to_working(image, panel.prediction.mask, shape=shape)
    maps = {name: resize_map(name, values, shape) for name, values in panel.maps.items()}
    dtypes = write_maps(folder / STORE_NAME, maps)
    if full_shape is not None:
        _write_tiffs(folder / FULL_MAPS, panel.maps, tuple(int(n) for n in full_shape))
    _write_figures(folder, shown, mask, maps, panel.gradcam_stages)
    report = {
        **meta,
        "disclaimer": DISCLAIMER,
        "maps_file": STORE_NAME,
        "shape": list(shape),  # of the maps in maps.npz
        "map_dtypes": dict(sorted(dtypes.items())),
        "working_shape": list(image.shape[:2]),  # of the copy the maps were computed on
        "threshold": panel.prediction.threshold,
        "maps": sorted(panel.maps),
        "stages": panel.gradcam_stages,
        "faithfulness": panel.faithfulness,
        "seconds": panel.seconds,
    }
    if full_shape is not None:
        report["full_maps"] = {"folder": FULL_MAPS, "shape": [int(n) for n in full_shape], "dtype": "float32",
                               "files": {name: f"{slug(name)}.tif" for name in sorted(panel.maps)}}
    if "ig" in panel.faithfulness:
        report["completeness_error"] = panel.faithfulness["ig"]["completeness_error"]
    (folder / "explain.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    return folder


def _write_tiffs(folder: Path, maps: dict[str, np.ndarray], shape: tuple[int, int]) -> None:
    """Every map as a float32 TIFF of ``shape``, made and written one at a time."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for name, values in maps.items():
        tifffile.imwrite(folder / f"{slug(name)}.tif", resize_map(name, values, shape), **TIFF_OPTIONS)


def _write_figures(folder: Path, image: np.ndarray, mask: np.ndarray, maps: dict[str, np.ndarray], stages: dict[str, list[str]]) -> None:
    """An overlay PNG per map (the per-layer CAMs excepted) and a Grad-CAM and a HiRes-CAM sheet per stage."""
    for name, values in maps.items():
        if not name.startswith(("gradcam ", "hirescam ")):
            map_figure(image, mask, values, name, folder / f"{slug(name)}.png")
    for method, title in (("gradcam", "Grad-CAM"), ("hirescam", "HiRes-CAM")):
        for stage, layers in stages.items():
            sheet = {layer: maps[f"{method} {layer}"] for layer in layers if f"{method} {layer}" in maps}
            if sheet:
                stage_sheet(image, sheet, stage, folder / f"{method}_{stage}.png", method=title)
