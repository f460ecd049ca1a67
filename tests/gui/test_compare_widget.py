"""The Compare widget: outlines per model and a side-by-side metric table."""

from __future__ import annotations

import numpy as np

from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.napari import common


def test_compare_outlines_and_metrics(make_napari_viewer, qtbot, tiny_bundle, photo, monkeypatch):
    errors: list[str] = []
    monkeypatch.setattr(common, "show_error", errors.append)
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    gt = viewer.add_labels(truth.astype(np.uint8), name="gt")
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Compare variants")
    widget._image.value, widget._truth.value = layer, gt
    widget._variants.value = []
    widget.run()
    assert "choose at least one variant" in errors[-1]
    widget._extra.value = tiny_bundle
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: widget._job is None and widget._run.enabled, timeout=300_000)
    outline = viewer.layers[f"{image_id} tiny outline"]
    assert outline.contour == 3 and outline.data.shape == image.shape[:2]
    expected = scores(Confusion.from_masks(outline.data > 0, truth))
    assert f"{expected['dice']:.4f}" in widget._info.value and ">tiny<" in widget._info.value
    assert len(errors) == 1
