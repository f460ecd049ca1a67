"""The Segment widget driven as a user would: choose layers and a model, press Segment, check layers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from data_paths import ISIC_IMAGES
from glassbox_xai.data.io import read_mask
from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.model import versions
from glassbox_xai.model.card import read_card
from glassbox_xai.napari import segment_widget as sw

def open_widget(viewer, bundle):
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    widget.model.value = sw.BUNDLE_ON_DISK
    widget.bundle.value = bundle
    return widget


def test_segment_pushes_aligned_layers_and_metrics(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True, scale=(0.02, 0.02), translate=(1.0, 2.0))
    gt = viewer.add_labels(truth.astype(np.uint8), name=f"{image_id} ground truth", scale=(0.02, 0.02), translate=(1.0, 2.0))
    widget = open_widget(viewer, tiny_bundle)
    widget.image.value, widget.truth.value = layer, gt
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
    assert f"{expected['dice']:.4f}" in widget.info.value and "not a medical device" in widget.info.value
    assert "ran on CPU" in widget.status.value or "ran on GPU" in widget.status.value

    count = len(viewer.layers)
    widget.threshold.value = 0.3
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
    widget.image.value = layer
    wrong = viewer.add_labels(np.zeros((100, 120), np.uint8), name="wrong size")
    widget.truth.value = wrong
    widget.run()
    assert "ground truth layer 'wrong size' is (100, 120), but the image is (512, 512)" in errors[-1]
    widget.truth.value = None

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_bundle.iterdir():
        broken.joinpath(f.name).write_bytes(f.read_bytes())
    (broken / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    widget.bundle.value = broken
    press(widget, timeout=180_000)
    assert "model.keras does not match its model card" in errors[-1]

    widget.bundle.value = tiny_bundle
    for data, name in ((image.mean(-1).astype(np.uint8), "grayscale"), (np.dstack([image, np.full(image.shape[:2], 255, np.uint8)]), "rgba")):
        gray = viewer.add_image(data, name=name, rgb=data.ndim == 3)
        widget.image.value = gray
        press(widget, timeout=180_000)
        assert viewer.layers[f"{name} prediction (custom)"].data.shape == image.shape[:2]
    assert len(errors) == 3  # the three errors above, nothing more


def test_cancel_stops_the_job(make_napari_viewer, qtbot, tiny_bundle, photo):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    widget = open_widget(viewer, tiny_bundle)
    sw.worker_for(viewer).stop()  # a cold worker: the job is still starting TensorFlow when cancelled
    widget.image.value = viewer.add_image(image, name=image_id, rgb=True)
    widget.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.run_button.enabled, timeout=5000)
    widget.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.running, timeout=10_000)
    assert widget.status.value == "cancelled" and widget.result is None
    assert f"{image_id} prediction (custom)" not in viewer.layers


def test_preprocessing_preview_and_segment_on_the_copy(make_napari_viewer, tiny_bundle, photo, errors, press):
    image_id, image, _ = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    widget = open_widget(viewer, tiny_bundle)
    widget.image.value = layer
    widget.use_preprocess.value = True
    widget.preprocess.set("gamma", 60)
    widget.preprocess.set("clahe", 2.0)
    widget.preview_button.clicked.emit()
    preview = viewer.layers[f"{image_id} preprocessed"]
    assert preview.data.shape == image.shape and not np.array_equal(preview.data, image)
    assert np.array_equal(layer.data, image)  # the photograph itself is untouched
    press(widget, timeout=180_000)
    assert not errors and viewer.layers[f"{image_id} prediction (custom)"].data.shape == image.shape[:2]


def test_threshold_follows_the_model_card_and_the_mask_equals_glassbox_predict(make_napari_viewer, photo, errors, tmp_path, press):
    """The widget starts from the card (threshold, TTA) of the chosen model, follows the picker,
    and writes the very mask `glassbox predict` writes for the same photograph and model."""
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    gt = viewer.add_labels(truth.astype(np.uint8), name=f"{image_id} ground truth")
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    assert widget.image.value is layer and widget.truth.value is gt  # the photograph's ground truth is pre-selected
    for variant in ("recall", "balanced", "dice"):
        widget.model.value = variant
        card = read_card(versions.bundle_for(variant))
        assert widget.threshold.value == pytest.approx(card.threshold) and f"threshold {card.threshold:.2f}" in widget.card_line.value
    dice_threshold = card.threshold  # the loop ends on dice, the card read last
    assert widget.threshold.value == pytest.approx(dice_threshold) and "flip TTA on" in widget.card_line.value
    press(widget, timeout=180_000)
    assert not errors and widget.result["threshold"] == pytest.approx(dice_threshold)
    pred = viewer.layers[f"{image_id} prediction (dice)"]
    assert viewer.layers.selection.active is pred  # the editable prediction, not the hidden probability map

    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "glassbox_xai.cli", "predict", str(ISIC_IMAGES / f"{image_id}.jpg"), "-o", str(out),
                    "--variant", "dice"], check=True, capture_output=True, timeout=300)
    cli_mask = read_mask(out / f"{image_id}_segmentation.png")
    assert cli_mask.any() and np.array_equal(pred.data > 0, cli_mask)

    widget.threshold.value = 0.6  # a threshold of the user's own is sent as it is
    press(widget, timeout=180_000)
    assert widget.result["threshold"] == pytest.approx(0.6) and np.count_nonzero(pred.data) < np.count_nonzero(cli_mask)


def test_ground_truth_is_picked_when_the_photograph_opens_after_the_widget(make_napari_viewer, photo):
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    assert widget.truth.value is None
    layer = viewer.add_image(image, name=image_id, rgb=True)
    gt = viewer.add_labels(truth.astype(np.uint8), name=f"{image_id} ground truth")
    assert widget.image.value is layer and widget.truth.value is gt
    other = viewer.add_labels(np.zeros(image.shape[:2], np.uint8), name="my own mask")
    widget.truth.value = other
    viewer.add_image(image, name="another photograph", rgb=True)
    assert widget.truth.value is other  # a choice of the user's is kept


def test_every_control_has_a_tooltip(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Segment lesion")
    missing = [w.name or w.label or type(w).__name__ for w in _controls(widget) if not w.tooltip]
    assert not missing, f"controls without a tooltip: {missing}"


def _controls(container):
    """Every input widget (not labels, not containers) inside a magicgui container."""
    from magicgui.widgets import Container, Label

    for w in container:
        if isinstance(w, Container):
            yield from _controls(w)
        elif not isinstance(w, Label):
            yield w
