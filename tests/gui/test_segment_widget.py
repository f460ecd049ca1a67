"""The Segment widget driven as a user would: choose layers and a model, press Segment, check layers."""

from __future__ import annotations


import numpy as np
import pytest

from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.napari import segment_widget as sw

def open_widget(viewer, bundle):
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    widget._model.value = sw.BUNDLE_ON_DISK
    widget._bundle.value = bundle
    return widget


def test_segment_pushes_aligned_layers_and_metrics(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True, scale=(0.02, 0.02), translate=(1.0, 2.0))
    gt = viewer.add_labels(truth.astype(np.uint8), name=f"{image_id} ground truth", scale=(0.02, 0.02), translate=(1.0, 2.0))
    widget = open_widget(viewer, tiny_bundle)
    widget._image.value, widget._truth.value = layer, gt
    press(widget, timeout=180_000)
    assert not errors and widget.result is not None
    pred = viewer.layers[f"{image_id} prediction (custom)"]
    prob = viewer.layers[f"{image_id} probability (custom)"]
    assert pred.data.shape == prob.data.shape == image.shape[:2]
    assert pred.data.dtype == np.uint8 and set(np.unique(pred.data)) <= {0, 1}
    assert prob.data.dtype == np.float32 and 0.0 <= prob.data.min() and prob.data.max() <= 1.0
    assert tuple(pred.scale) == tuple(prob.scale) == (0.02, 0.02) and tuple(pred.translate) == (1.0, 2.0)
    expected = scores(Confusion.from_masks(pred.data > 0, truth))
    assert widget.result["metrics"] == expected
    assert f"{expected['dice']:.4f}" in widget._metrics.value and "not a medical device" in widget._metrics.value
    assert "ran on CPU" in widget._status.value or "ran on GPU" in widget._status.value

    count = len(viewer.layers)
    widget._threshold.value = 0.3
    press(widget, timeout=180_000)
    assert len(viewer.layers) == count  # re-running replaces, never piles up
    assert widget.result["threshold"] == pytest.approx(0.3)


def test_bad_input_gives_notifications_not_crashes(make_napari_viewer, tiny_bundle, photo, errors, tmp_path, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    widget = open_widget(viewer, tiny_bundle)
    widget.run()
    assert "open a dermoscopy photograph first" in errors[-1]

    layer = viewer.add_image(image, name=image_id, rgb=True)
    widget._image.value = layer
    wrong = viewer.add_labels(np.zeros((100, 120), np.uint8), name="wrong size")
    widget._truth.value = wrong
    widget.run()
    assert "ground truth layer 'wrong size' is (100, 120), but the image is (512, 512)" in errors[-1]
    widget._truth.value = None

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_bundle.iterdir():
        broken.joinpath(f.name).write_bytes(f.read_bytes())
    (broken / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    widget._bundle.value = broken
    press(widget, timeout=180_000)
    assert "model.keras does not match its model card" in errors[-1]

    widget._bundle.value = tiny_bundle
    for data, name in ((image.mean(-1).astype(np.uint8), "grayscale"), (np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), "rgba")):
        gray = viewer.add_image(data, name=name, rgb=data.ndim == 3)
        widget._image.value = gray
        press(widget, timeout=180_000)
        assert viewer.layers[f"{name} prediction (custom)"].data.shape == image.shape[:2]
    assert len(errors) == 3  # the three errors above, nothing more


def test_cancel_stops_the_job(make_napari_viewer, qtbot, tiny_bundle, photo):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    widget = open_widget(viewer, tiny_bundle)
    sw.worker_for(viewer).stop()  # a cold worker: the job is still starting TensorFlow when cancelled
    widget._image.value = viewer.add_image(image, name=image_id, rgb=True)
    widget._run.clicked.emit()
    qtbot.waitUntil(lambda: not widget._run.enabled, timeout=5000)
    widget._cancel.clicked.emit()
    qtbot.waitUntil(lambda: widget._job is None, timeout=10_000)
    assert widget._status.value == "cancelled" and widget.result is None
    assert f"{image_id} prediction (custom)" not in viewer.layers


def test_preprocessing_preview_and_segment_on_the_copy(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    widget = open_widget(viewer, tiny_bundle)
    widget._image.value = layer
    widget._use_preprocess.value = True
    widget._preprocess.set("gamma", 60)
    widget._preprocess.set("clahe", 2.0)
    widget._preview.clicked.emit()
    preview = viewer.layers[f"{image_id} preprocessed"]
    assert preview.data.shape == image.shape and not np.array_equal(preview.data, image)
    assert np.array_equal(layer.data, image)  # the photograph itself is untouched
    press(widget, timeout=180_000)
    assert not errors and viewer.layers[f"{image_id} prediction (custom)"].data.shape == image.shape[:2]
