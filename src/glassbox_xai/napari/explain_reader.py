"""Opening a ``glassbox explain`` output folder in napari: the photograph and every map of
its ``maps.npz`` laid over it, with the Explain widget's colour maps, legends and layer stacks.

The maps are stored smaller than the photograph (at most 512 px a side); each map layer
gets the scale (and the half-pixel shift) that puts it over the photograph. Headless:
this builds napari layer-data tuples from plain arrays without importing napari, so it
is tested without a viewer; :mod:`.io_hooks` hands them to napari.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.io import read_image
from ..xai.map_store import STORE_NAME, read_maps
from .layers import map_layer_name, map_metadata, map_style, stack_layers, stacked_families

REPORT = "explain.json"


def explanation_folder(path: str | Path) -> Path | None:
    """The ``glassbox explain`` folder of one photograph that ``path`` names (the folder, its
    ``maps.npz`` or its ``explain.json``), or ``None`` when ``path`` is not one."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent if path.name in (STORE_NAME, REPORT) else None
    if folder is not None and (folder / REPORT).is_file() and (folder / STORE_NAME).is_file():
        return folder
    return None


def explanation_layers(path: str | Path) -> list[tuple]:
    """Layer-data tuples for an explain folder: the photograph (when its file is still where
    ``explain.json`` says), then one layer per map, the Grad-CAM and HiRes-CAM layers each as
    one stack with a slider; only the first map is visible.

    Raises:
        ValueError: ``path`` is not an explain folder (``explain.json`` and ``maps.npz``).
    """
    folder = explanation_folder(path)
    if folder is None:
        raise ValueError(f"{path} is not a glassbox explain folder; expected a folder holding {REPORT} and {STORE_NAME}")
    report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    maps = read_maps(folder / STORE_NAME)
    photo = Path(report.get("image", ""))
    name = photo.stem if photo.name else folder.name
    variant = Path(report.get("model", "model")).name
    layers = []
    full_shape = report.get("photograph_shape")
    if photo.is_file():
        image = read_image(photo)
        full_shape = image.shape[:2]
        layers.append((image, {"name": name, "rgb": True, "metadata": {"path": str(photo)}}, "image"))
    if not maps:
        return layers
    shape = next(iter(maps.values())).shape
    scale, translate = map_placement(shape, tuple(full_shape or shape))
    stacks = {family: stack_layers(maps, report.get("stages", {}), family) for family in stacked_families()}
    for map_name, values in maps.items():
        layers.append(_layer(map_layer_name(name, map_name, variant), values, map_style(map_name, values),
                             map_metadata(name, map_name, variant), scale, translate))
    for family, (stack, labels) in stacks.items():
        if stack is not None:
            extra = {"axis_labels": (labels[0], "-2", "-1")}
            layers.append(_layer(map_layer_name(name, family, variant), stack, {**map_style(family, stack), **extra},
                                 map_metadata(name, family, variant, labels), (1.0, *scale), (0.0, *translate)))
    first_map = 1 if photo.is_file() else 0
    for index, (_, kwargs, _) in enumerate(layers[first_map:]):
        kwargs["visible"] = index == 0  # the maps hide each other; napari's eye icon shows the next
    return layers


def map_placement(shape: tuple[int, int], full_shape: tuple[int, int]) -> tuple[tuple[float, float], tuple[float, float]]:
    """napari ``scale`` and ``translate`` that lay a (rows, cols) map over a photograph of
    ``full_shape``: each map pixel covers ``scale`` photograph pixels, centred on them."""
    scale = (full_shape[0] / shape[0], full_shape[1] / shape[1])
    return scale, ((scale[0] - 1) / 2, (scale[1] - 1) / 2)


def _layer(name: str, data: np.ndarray, style: dict, metadata: dict, scale: tuple, translate: tuple) -> tuple:
    return data, {"name": name, "metadata": metadata, "scale": scale, "translate": translate, **style}, "image"
