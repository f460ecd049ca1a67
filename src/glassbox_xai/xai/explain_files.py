"""Explaining a photograph at a bounded working resolution, and writing the panel to
disk: float TIFF maps (native resolution by default), overlay PNGs, Grad-CAM sheets
per stage, and a JSON of faithfulness numbers.

Every attribution map is computed at the model's input resolution (192 or 256 px a
side) and only resized afterwards, so a 7,000 x 7,000 photograph holds no more
information in its maps than a 1,024 px copy does. The panel is therefore computed on
a copy at most ``WORKING_SIDE`` px a side; native-resolution maps are produced one at
a time while they are written, so memory stays bounded whatever the photograph's size.
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
from .panel import Panel

WORKING_SIDE = 1024
"""Longest side, in pixels, of the copy a panel is computed on (photographs no larger are used as they are)."""

MIN_SIDE = 32
"""Shortest side, in pixels, the working copy shrinks a side to (a side already shorter is kept)."""

TIFF_OPTIONS = {"compression": "zlib", "compressionargs": {"level": 1}}
"""Float maps barely compress (a 7,000 px map: 157 MB at zlib's default level 6, 156 MB at
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
    """A float32 map resized to ``shape`` (rows, cols): bilinear, or nearest for region maps."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape == tuple(shape):
        return values
    interpolation = cv2.INTER_NEAREST if name in PIECEWISE_CONSTANT else cv2.INTER_LINEAR
    return cv2.resize(values, (int(shape[1]), int(shape[0])), interpolation=interpolation)


def write_panel(folder: str | Path, image: np.ndarray, panel: Panel, meta: dict, map_shape: tuple[int, int] | None = None) -> Path:
    """Write every map of ``panel`` into ``folder``; return the folder.

    ``image`` is the photograph the panel was computed on (figures are drawn over it);
    ``map_shape`` (rows, cols) is the size of the TIFF maps, usually the original
    photograph's; by default the panel's own size. Native maps are made one at a time,
    so at most one of them is in memory.
    """
    import tifffile

    folder = Path(folder)
    map_shape = tuple(int(n) for n in (map_shape or image.shape[:2]))
    (folder / "maps").mkdir(parents=True, exist_ok=True)
    for name, values in panel.maps.items():
        tifffile.imwrite(folder / "maps" / f"{slug(name)}.tif", resize_map(name, values, map_shape), **TIFF_OPTIONS)
        if not name.startswith(("gradcam ", "hirescam ")):
            map_figure(image, panel.prediction.mask, values, name, folder / f"{slug(name)}.png")
    for stage, layers in panel.gradcam_stages.items():
        maps = {layer: panel.maps[f"gradcam {layer}"] for layer in layers}
        if maps:
            stage_sheet(image, maps, stage, folder / f"gradcam_{stage}.png")
    report = {
        **meta,
        "disclaimer": DISCLAIMER,
        "shape": list(map_shape),  # of the TIFF maps
        "working_shape": list(image.shape[:2]),  # of the copy the maps were computed on
        "threshold": panel.prediction.threshold,
        "maps": sorted(panel.maps),
        "faithfulness": panel.faithfulness,
        "seconds": panel.seconds,
    }
    if "ig" in panel.faithfulness:
        report["completeness_error"] = panel.faithfulness["ig"]["completeness_error"]
    (folder / "explain.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    return folder
