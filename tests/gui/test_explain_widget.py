"""The Explain widget driven as a user would."""

from __future__ import annotations

import numpy as np

from glassbox_xai.napari import common


def test_explain_pushes_every_map_as_an_aligned_layer(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True, scale=(0.5, 0.5))
    gt = viewer.add_labels(truth.astype(np.uint8), name="gt", scale=(0.5, 0.5))
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    widget._model.value = common.BUNDLE_ON_DISK
    widget._bundle.value = tiny_bundle
    widget._image.value, widget._truth.value, widget._target.value = layer, gt, "truth"
    press(widget)
    assert not errors and widget.result is not None
    names = [l.name for l in viewer.layers]
    for expected in ("confidence", "superpixel confidence", "saliency", "saliency-sigmoid", "integrated gradients",
                     "attention attention0", "Grad-CAM by layer"):
        assert f"{image_id} {expected} (custom)" in names, expected
    for name in names[2:]:
        data = viewer.layers[name].data
        assert data.shape[-2:] == image.shape[:2] and data.dtype == np.float32, name
        assert tuple(viewer.layers[name].scale[-2:]) == (0.5, 0.5)
    stack = viewer.layers[f"{image_id} Grad-CAM by layer (custom)"]
    assert stack.data.ndim == 3 and len(stack.metadata["layers"]) == stack.data.shape[0]
    assert stack.metadata["layers"][0].startswith("encoder:") and stack.metadata["layers"][-1] == "output: output_logits"
    assert "IG error" in widget._info.value and "deletion" in widget._info.value
    assert f"{widget.result['faithfulness']['ig']['completeness_error']:.3f}" in widget._info.value
    count = len(viewer.layers)
    press(widget)
    assert len(viewer.layers) == count


def test_drawn_region_and_bad_targets(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    widget._model.value = common.BUNDLE_ON_DISK
    widget._bundle.value = tiny_bundle
    widget._image.value = layer
    widget._target.value = "truth"
    widget.run()
    assert "needs a ground truth layer" in errors[-1]
    shapes = viewer.add_shapes([np.array([[100, 100], [100, 300], [300, 300], [300, 100]])], shape_type="polygon", name="my region")
    widget._target.value = "drawn region"
    widget._drawn.value = shapes
    widget._methods.value = ["saliency"]
    press(widget)
    assert f"{image_id} saliency (custom)" in viewer.layers and len(errors) == 1
