"""The Compare widget: outlines per model and a side-by-side metric table, on one image or over a folder with masks."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.napari import common


def test_compare_outlines_and_metrics(make_napari_viewer, tiny_bundle, photo, monkeypatch, finish):
    errors: list[str] = []
    monkeypatch.setattr(common, "show_error", errors.append)
    image_id, image, truth = photo
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name=image_id, rgb=True)
    gt = viewer.add_labels(truth.astype(np.uint8), name="gt")
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Compare variants")
    widget.image.value, widget.truth.value = layer, gt
    widget.variants.value = []
    widget.run()
    assert "choose at least one variant" in errors[-1]
    widget.extra_bundle.value = tiny_bundle
    widget.run_button.clicked.emit()
    finish(widget)
    outline = viewer.layers[f"{image_id} tiny outline"]
    assert outline.contour == 3 and outline.data.shape == image.shape[:2]
    expected = scores(Confusion.from_masks(outline.data > 0, truth))
    assert f"{expected['dice']:.4f}" in widget.info.value and ">tiny<" in widget.info.value
    assert len(errors) == 1


def _masked_folder(tmp_path, n: int = 4):
    """``n`` real dev_val photographs with their masks beside them, copied into ``tmp_path``."""
    from data_paths import copy_dev_val

    return copy_dev_val(tmp_path, n)


def _compare_widget(viewer, tiny_bundle):
    _, widget = viewer.window.add_plugin_dock_widget("glassbox-xai", "Compare variants")
    widget.variants.value = []
    widget.extra_bundle.value = tiny_bundle
    return widget


def test_compare_on_folder_shows_table_and_opens_cases(make_napari_viewer, tiny_bundle, tmp_path, errors, finish):
    from glassbox_xai.data.io import read_image, read_mask

    ids = _masked_folder(tmp_path)
    viewer = make_napari_viewer()
    widget = _compare_widget(viewer, tiny_bundle)
    widget.folder.value = tmp_path
    widget.compare_folder_button.clicked.emit()
    assert not widget.compare_folder_button.enabled
    finish(widget)
    assert errors == [] and widget.compare_folder_button.enabled
    (variant,) = widget.result["variants"]
    assert variant["name"] == "tiny" and list(variant["dice"]) == ids
    assert np.mean(list(variant["dice"].values())) == pytest.approx(variant["metrics"]["dice"])
    html = widget.folder_info.value
    for key in ("dice", "jaccard", "precision", "accuracy"):
        assert f"{variant['metrics'][key]:.4f}" in html
    assert ">tiny<" in html and "Mean over 4 images" in html and "TP " in html and "TN " in html
    assert not widget.cases.native.isHidden() and len(widget.cases.choices) == 1 + 3 * 3

    # a 12 MP photograph is open: the 512-px case must fill the view and the photograph be gone
    big = viewer.add_image(np.zeros((3000, 4000, 3), np.uint8), rgb=True, name="big photo")
    viewer.add_image(np.zeros((5, 300, 400), np.float32), scale=(1, 10, 10), name="big photo stack")  # a 3-D map of it
    viewer.reset_view()
    zoom_on_big = viewer.scene.camera.zoom
    best = variant["picks"]["best"][0]
    widget.cases.value = (0, "best", best)
    finish(widget)
    image = read_image(tmp_path / f"{best}.jpg")
    assert not big.visible and [layer.name for layer in viewer.layers if layer.visible and not layer.name.startswith(best)] == []
    assert viewer.scene.camera.zoom > 4 * zoom_on_big  # fitted to the 512-px case, not to the 4000-px photograph
    assert np.allclose(viewer.scene.camera.center[-2:], np.array(image.shape[:2]) / 2 - 0.5, atol=2)
    assert viewer.layers[best].data.shape == image.shape
    truth = viewer.layers[f"{best} ground truth"].data
    assert truth.shape == image.shape[:2] and np.array_equal(truth > 0, read_mask(tmp_path / f"{best}_segmentation.png"))
    outline = viewer.layers[f"{best} tiny outline"]
    assert outline.data.shape == image.shape[:2] and outline.contour == 3
    assert widget.image.value is viewer.layers[best] and widget.truth.value is viewer.layers[f"{best} ground truth"]
    assert widget.result["results"][0]["metrics"]["dice"] == pytest.approx(variant["dice"][best], abs=2e-3)
    assert html == widget.folder_info.value and errors == []
    assert widget.cases.value == (0, "best", best) and len(widget.cases.choices) == 1 + 3 * 3  # napari's reset_choices kept them

    worst = variant["picks"]["worst"][0]
    widget.cases.value = (0, "worst", worst)
    finish(widget)
    if worst != best:
        assert not viewer.layers[best].visible and not viewer.layers[f"{best} tiny outline"].visible
    assert viewer.layers[worst].visible and viewer.layers[f"{worst} tiny outline"].visible and errors == []


@pytest.mark.parametrize("content, message", [("empty", "no images found"), ("no masks", "have no mask"), ("unset", "choose a folder")])
def test_compare_on_folder_refuses_a_folder_it_cannot_score(make_napari_viewer, tmp_path, tiny_bundle, errors, content, message):
    if content == "no masks":
        _masked_folder(tmp_path, 2)
        for mask in tmp_path.glob("*_segmentation.png"):
            mask.unlink()
    viewer = make_napari_viewer()
    widget = _compare_widget(viewer, tiny_bundle)
    if content != "unset":
        widget.folder.value = tmp_path
    widget.compare_folder()
    assert len(errors) == 1 and message in errors[0]
    assert not widget.running and widget.run_button.enabled and widget.compare_folder_button.enabled and widget.cases.native.isHidden()


def test_compare_on_folder_lists_the_galleries_and_a_click_opens_a_case(make_napari_viewer, tiny_bundle, tmp_path, errors, finish, qtbot):
    from qtpy.QtCore import Qt

    _masked_folder(tmp_path)
    viewer = make_napari_viewer(show=True)
    widget = _compare_widget(viewer, tiny_bundle)
    widget.folder.value = tmp_path
    assert widget.gallery_map.value == "gradcam" and all(listed.native.isHidden() for listed in widget.galleries.values())
    widget.compare_folder_button.clicked.emit()
    finish(widget)
    assert errors == []
    gallery = widget.result["galleries"]["tiny"]
    assert gallery["maps"] == ["gradcam decoder0_conv2"]
    for group, listed in widget.galleries.items():
        shown = [listed.native.item(i).text() for i in range(listed.native.count())]
        assert not listed.native.isHidden() and [text.split(" · ")[0] for text in shown] == gallery["groups"][group], group
    assert gallery["groups"]["good explanations"] and gallery["groups"]["bad explanations"]
    assert "Galleries" in widget.folder_info.value and "gradcam decoder0_conv2" in widget.folder_info.value

    for group in ("bad explanations", "good explanations"):
        listed = widget.galleries[group].native
        listed.scrollToItem(listed.item(0))
        qtbot.mouseClick(listed.viewport(), Qt.MouseButton.LeftButton, pos=listed.visualItemRect(listed.item(0)).center())
        finish(widget)
        case = gallery["groups"][group][0]
        assert widget.image.value is viewer.layers[case] and viewer.layers[case].visible
        assert viewer.layers[f"{case} ground truth"].visible and viewer.layers[f"{case} tiny outline"].visible
        assert widget.result["results"][0]["metrics"]["dice"] == pytest.approx(gallery["cases"][[c["id"] for c in gallery["cases"]].index(case)]["dice"], abs=2e-3)
    assert errors == []


def test_no_galleries_when_the_user_says_so(make_napari_viewer, tiny_bundle, tmp_path, errors, finish):
    _masked_folder(tmp_path, 2)
    viewer = make_napari_viewer()
    widget = _compare_widget(viewer, tiny_bundle)
    widget.folder.value = tmp_path
    widget.gallery_map.value = None
    widget.compare_folder_button.clicked.emit()
    finish(widget)
    assert errors == [] and widget.result["galleries"] == {}
    assert all(listed.native.isHidden() for listed in widget.galleries.values()) and "Galleries" not in widget.folder_info.value
