"""Opening a photograph with its mask, and saving a Labels layer as an ISIC mask."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids, copy_dev_val
from glassbox_xai.data.io import read_mask
from glassbox_xai.napari.io_hooks import get_reader


def test_photo_opens_with_its_ground_truth(make_napari_viewer, tmp_path):
    image_id = split_ids("dev_val")[1]
    shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", tmp_path)
    shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", tmp_path)
    assert get_reader(str(tmp_path / f"{image_id}_segmentation.png")) is None  # masks are not photographs
    viewer = make_napari_viewer(show=True)  # shown: the screenshots below are what a user sees
    viewer.open(str(tmp_path / f"{image_id}.jpg"), plugin="glassbox-xai")
    assert [layer.name for layer in viewer.layers] == [image_id, f"{image_id} ground truth"]
    truth = viewer.layers[f"{image_id} ground truth"]
    assert truth.data.shape == viewer.layers[image_id].data.shape[:2]
    assert np.array_equal(truth.data > 0, read_mask(ISIC_MASKS / f"{image_id}_segmentation.png"))
    assert truth.contour >= 2  # an outline over the photograph, not an opaque fill hiding the lesion

    def changed(shot) -> int:  # canvas pixels the ground-truth layer changes
        return int(np.count_nonzero(np.abs(shot.astype(int) - photo_only.astype(int)).max(-1) > 30))

    outlined = viewer.screenshot(canvas_only=True, flash=False)
    truth.visible = False
    photo_only = viewer.screenshot(canvas_only=True, flash=False)
    truth.visible, truth.contour = True, 0
    filled = viewer.screenshot(canvas_only=True, flash=False)
    assert 0 < changed(outlined) < 0.2 * changed(filled)  # the lesion stays visible inside its outline


def test_labels_layer_saves_as_isic_mask(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.zeros((40, 60), np.uint8)
    data[10:20, 5:50] = 3
    layer = viewer.add_labels(data, name="edited")
    target = tmp_path / "ISIC_0000001_segmentation.png"
    layer.save(str(target), plugin="glassbox-xai")
    saved = np.asarray(Image.open(target))
    assert saved.dtype == np.uint8 and saved.shape == (40, 60)
    assert set(np.unique(saved).tolist()) == {0, 255} and np.array_equal(saved > 0, data > 0)


def test_a_photo_in_the_isic_layout_opens_with_its_ground_truth_as_every_command_pairs_it(make_napari_viewer, tmp_path):
    from glassbox_xai.data.layout import discover

    image_id = split_ids("dev_val")[2]
    inputs, truths = tmp_path / "ISIC2018_Task1-2_Training_Input", tmp_path / "ISIC2018_Task1_Training_GroundTruth"
    inputs.mkdir()
    truths.mkdir()
    shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", inputs)
    shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", truths)  # not beside the photograph
    assert discover(inputs / f"{image_id}.jpg")[0].mask == truths / f"{image_id}_segmentation.png"
    viewer = make_napari_viewer()
    viewer.open(str(inputs / f"{image_id}.jpg"), plugin="glassbox-xai")
    truth = viewer.layers[f"{image_id} ground truth"]  # the reader pairs it as glassbox evaluate does
    assert np.array_equal(truth.data > 0, read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")) and truth.contour >= 2


def test_a_folder_opens_as_a_browsable_set_in_the_review_widget(make_napari_viewer, tiny_bundle, tmp_path, errors, finish):
    from glassbox_xai.hitl.session import default_set_dir
    from glassbox_xai.model import versions

    folder = tmp_path / "photos"
    ids = copy_dev_val(folder, 3)
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None  # a folder with no photographs is not ours to open
    shutil.copytree(tiny_bundle, tmp_path / "tiny-version" / "bundle")
    versions.set_active(versions.register(tmp_path / "tiny-version" / "bundle"))  # the review segments with the active model
    viewer = make_napari_viewer()
    viewer.open(str(folder), plugin="glassbox-xai")
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Review and correct")  # the one the reader docked: napari returns it
    finish(widget)
    assert widget.model.value == "tiny-version" and "image 1 of 3" in widget.where.value
    assert [layer.name for layer in viewer.layers][:2] == [ids[0], f"{ids[0]} ground truth (outline)"]
    assert f"{ids[0]} prediction (tiny-version)" in viewer.layers  # named by the version that made it
    assert widget.retraining_set.value == default_set_dir(folder) and widget.retraining_set.value.name.startswith("photos-") and not errors
