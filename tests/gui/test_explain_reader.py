"""A `glassbox explain` folder dropped on napari: the photograph with every map laid over it."""

from __future__ import annotations

import json

import numpy as np

from data_paths import NATIVE
from glassbox_xai.xai.map_store import STORE_NAME, write_maps

PHOTO = NATIVE / "ISIC_0010459.jpg"  # 1,024 x 768


def _explain_folder(folder):
    """What glassbox explain writes, made without TensorFlow (GUI tests never load it): maps.npz
    at 512 x 384 and explain.json naming the real photograph."""
    rows, cols = np.mgrid[0:384, 0:512]
    blob = np.exp(-((rows - 200) ** 2 + (cols - 260) ** 2) / 3000.0).astype(np.float32)
    maps = {"confidence": blob, "integrated gradients": blob - 0.5, "gradcam decoder0_conv1": blob, "gradcam decoder0_conv2": blob ** 2,
            "gradcam output_logits": blob, "attention attention0": blob}
    folder.mkdir()
    write_maps(folder / STORE_NAME, maps)
    report = {"image": str(PHOTO), "model": "/bundles/dice", "photograph_shape": [768, 1024], "shape": [384, 512], "maps": sorted(maps),
              "stages": {"decoder": ["decoder0_conv1", "decoder0_conv2"], "output": ["output_logits"]}}
    (folder / "explain.json").write_text(json.dumps(report))
    return folder


def test_explain_folder_opens_as_photograph_and_aligned_maps(make_napari_viewer, tmp_path):
    folder = _explain_folder(tmp_path / PHOTO.stem)
    viewer = make_napari_viewer()
    viewer.open(str(folder), plugin="glassbox-xai")
    names = [layer.name for layer in viewer.layers]
    assert names[0] == PHOTO.stem and len(names) == 5  # photograph, confidence, IG, attention, one Grad-CAM stack
    photo = viewer.layers[PHOTO.stem]
    maps = [layer for layer in viewer.layers if "glassbox_map" in layer.metadata]
    stack = next(layer for layer in maps if layer.metadata["glassbox_map"] == "gradcam")
    assert stack.data.shape == (3, 384, 512) and stack.metadata["layers"] == ["decoder: decoder0_conv1", "decoder: decoder0_conv2",
                                                                             "output: output_logits"]
    for layer in maps:
        assert tuple(layer.scale[-2:]) == (2.0, 2.0) and tuple(layer.translate[-2:]) == (0.5, 0.5)
        corner = layer.data_to_world((0,) * (layer.ndim - 2) + (383, 511))[-2:]
        assert np.allclose(corner, (766.5, 1022.5))  # the last map pixel covers the photograph's last two rows and columns
    assert [layer.visible for layer in maps] == [True] + [False] * (len(maps) - 1)
    assert photo.data.shape == (768, 1024, 3)
    diverging = viewer.layers[next(n for n in names if "IG" in n)]
    assert diverging.contrast_limits[0] < 0 < diverging.contrast_limits[1]
