"""Layers other widgets add, as the Explain legend and the variant colours see them (no model run)."""

from __future__ import annotations

import numpy as np

from glassbox_xai.napari.layers import VARIANT_COLORS, probability_name
from glassbox_xai.napari.segment_widget import apply_result
from glassbox_xai.xai.legend import LEGENDS


def _result(seed: int) -> dict:
    probabilities = np.random.default_rng(seed).random((40, 50), dtype=np.float32)
    return {"mask": probabilities > 0.5, "probabilities": probabilities}


def test_each_variant_prediction_has_its_own_colour_and_the_probability_a_legend(make_napari_viewer):
    viewer = make_napari_viewer()
    photo = viewer.add_image(np.zeros((40, 50, 3), np.uint8), rgb=True, name="photo")
    _, explain = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    for seed, variant in enumerate(VARIANT_COLORS):
        apply_result(viewer, photo, _result(seed), variant)
    for variant, color in VARIANT_COLORS.items():
        prediction = viewer.layers[f"photo prediction ({variant})"]
        assert np.allclose(prediction.colormap.map(np.array([1]))[0, :3], [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    probability = viewer.layers[probability_name("photo", "recall")]
    assert probability.metadata["glassbox_map"] == "probability" and not probability.visible
    assert probability.colormap.map(np.array([0.0]))[0, 3] == 0.0  # no probability, no tint
    viewer.layers.selection.active = probability
    assert LEGENDS["probability"].meaning in explain.legend.value and "(recall)" in explain.legend.value
