"""The Explain widget driven as a user would."""

from __future__ import annotations

import numpy as np

from glassbox_xai.napari import common
from glassbox_xai.napari.layers import map_layer_name
from glassbox_xai.xai.legend import LEGENDS

MAPS = ("confidence", "superpixel confidence", "saliency", "saliency-sigmoid", "integrated gradients",
        "attention attention0", "gradcam")


def _explain(viewer, tiny_bundle, image_id, image, truth, press, scale=(1.0, 1.0)):
    layer = viewer.add_image(image, name=image_id, rgb=True, scale=scale)
    gt = viewer.add_labels(truth.astype(np.uint8), name="gt", scale=scale)
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    widget.model.value = common.BUNDLE_ON_DISK
    widget.bundle.value = tiny_bundle
    widget.image.value, widget.truth.value, widget.target.value = layer, gt, "truth"
    press(widget)
    return widget


def test_explain_pushes_every_map_as_an_aligned_layer(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    widget = _explain(viewer, tiny_bundle, image_id, image, truth, press, scale=(0.5, 0.5))
    assert not errors and widget.result is not None
    names = [l.name for l in viewer.layers]
    for expected in MAPS:
        assert map_layer_name(image_id, expected, "custom") in names, expected
    for name in names[2:]:
        data = viewer.layers[name].data
        assert data.shape[-2:] == image.shape[:2] and data.dtype == np.float32, name
        assert tuple(viewer.layers[name].scale[-2:]) == (0.5, 0.5)
    stack = viewer.layers[map_layer_name(image_id, "gradcam", "custom")]
    assert stack.data.ndim == 3 and len(stack.metadata["layers"]) == stack.data.shape[0]
    assert stack.metadata["layers"][0].startswith("encoder:") and stack.metadata["layers"][-1] == "output: output_logits"
    assert "IG err." in widget.info.value and "deletion" in widget.info.value
    assert f"{widget.result['faithfulness']['ig']['completeness_error']:.3f}" in widget.info.value
    count = len(viewer.layers)
    press(widget)
    assert len(viewer.layers) == count


def test_one_map_shown_with_transparent_zero_legend_and_labelled_slider(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    widget = _explain(viewer, tiny_bundle, image_id, image, truth, press)
    maps = [layer for layer in viewer.layers if "glassbox_map" in layer.metadata]
    assert len(maps) == len(viewer.layers) - 2 and not errors
    assert len({layer.name for layer in maps}) == len(maps)  # superpixel and pixel confidence no longer look alike
    assert [layer.name for layer in maps if len(layer.name) > len(f"{image_id}  (custom)") + 10] == []
    for layer in maps:
        legend = LEGENDS[layer.metadata["glassbox_map"]]
        assert layer.metadata["meaning"] == legend.meaning and layer.metadata["units"] == legend.units
        alphas = layer.colormap.map(np.linspace(0, 1, 101))[:, 3]
        assert alphas.min() == 0.0, layer.name  # somewhere on its scale the photograph shows through
    gradcam = viewer.layers[map_layer_name(image_id, "gradcam", "custom")]
    assert gradcam.colormap.map(np.array([0.0]))[0, 3] == 0.0  # zero Grad-CAM leaves the photograph untouched
    ig = viewer.layers[map_layer_name(image_id, "integrated gradients", "custom")]
    assert ig.contrast_limits[0] == -ig.contrast_limits[1] and ig.colormap.map(np.array([0.5]))[0, 3] == 0.0

    # the newest map (a stack over the network's layers) is shown alone, with its colour bar and its legend in the dock
    newest = maps[-1]
    assert "layers" in newest.metadata and viewer.layers.selection.active is newest
    assert [layer.name for layer in maps if layer.visible] == [newest.name] and newest.colorbar.visible
    assert not any(layer.colorbar.visible for layer in maps if layer is not newest)
    assert LEGENDS[newest.metadata["glassbox_map"]].meaning in widget.legend.value

    # choosing another map in the layer list shows it alone and its legend follows
    sigmoid = viewer.layers[map_layer_name(image_id, "saliency-sigmoid", "custom")]
    viewer.layers.selection.active = sigmoid
    assert [layer.name for layer in maps if layer.visible] == [sigmoid.name] and sigmoid.colorbar.visible
    assert LEGENDS["saliency-sigmoid"].meaning in widget.legend.value and LEGENDS["saliency-sigmoid"].units in widget.legend.value
    assert f"{sigmoid.contrast_limits[1]:.3g}" in widget.legend.value

    # the confidence legend says how far its colours can be taken at their word (the tiny model's card has no calibration)
    viewer.layers.selection.active = viewer.layers[map_layer_name(image_id, "confidence", "custom")]
    assert widget.result["calibration"] == {} and "Not calibrated" in widget.legend.value

    # the Grad-CAM slider is labelled with the network layer it shows, and the legend follows it
    viewer.layers.selection.active = gradcam
    names = gradcam.metadata["layers"]
    for index in (0, 2, len(names) - 1):
        viewer.dims.set_current_step(0, index)
        assert viewer.dims.axis_labels[0] == names[index]
        assert names[index] in widget.legend.value and f"layer {index + 1}/{len(names)}" in widget.legend.value


def test_drawn_region_and_bad_targets(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Explain segmentation")
    widget.model.value = common.BUNDLE_ON_DISK
    widget.bundle.value = tiny_bundle
    widget.image.value = layer
    widget.target.value = "truth"
    widget.run()
    assert "needs a ground truth layer" in errors[-1]
    shapes = viewer.add_shapes([np.array([[100, 100], [100, 300], [300, 300], [300, 100]])], shape_type="polygon", name="my region")
    widget.target.value = "drawn region"
    widget.drawn_region.value = shapes
    widget.methods.value = ["saliency"]
    press(widget)
    assert map_layer_name(image_id, "saliency", "custom") in viewer.layers and len(errors) == 1
