"""Headless helpers under the napari widgets, tested without a viewer."""

from __future__ import annotations

import numpy as np
import pytest

from glassbox_xai.napari.layers import core_metrics, image_for_model, metrics_html, prediction_name, probability_name, truth_for_image


def test_layer_names_carry_image_and_variant():
    assert prediction_name("ISIC_0000013", "dice") == "ISIC_0000013 prediction (dice)"
    assert probability_name("ISIC_0000013", "recall") == "ISIC_0000013 probability (recall)"


@pytest.mark.parametrize(
    "data, note",
    [
        (np.zeros((20, 30, 3), np.uint8), None),
        (np.zeros((20, 30), np.uint8), "grayscale image converted to RGB"),
        (np.zeros((20, 30, 4), np.uint8), "RGBA image: alpha channel dropped"),
        (np.zeros((20, 30, 3), np.uint16) + 1000, "uint16 image scaled to 8 bits"),
    ],
)
def test_image_for_model_converts_and_says_so(data, note):
    rgb, notes = image_for_model(data, "layer")
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    assert (notes == []) if note is None else any(note in n for n in notes)


def test_image_for_model_refuses_stacks():
    with pytest.raises(ValueError, match="expected a 2-D grayscale or"):
        image_for_model(np.zeros((5, 20, 30, 3), np.uint8), "stack")


def test_truth_must_match_the_image():
    assert truth_for_image(np.eye(4, dtype=np.uint8) * 2, (4, 4), "gt").dtype == bool
    with pytest.raises(ValueError, match=r"ground truth layer 'gt' is \(4, 5\), but the image is \(4, 4\)"):
        truth_for_image(np.zeros((4, 5)), (4, 4), "gt")


def test_metrics_html_shows_every_metric_and_the_disclaimer():
    truth = np.zeros((10, 10), bool)
    truth[2:6, 2:6] = True
    metrics, confusion = core_metrics(np.roll(truth, 1, axis=0), truth)
    html = metrics_html(metrics, confusion)
    for label in ("Dice", "IoU (Jaccard)", "thresholded Jaccard", "precision", "recall", "specificity", "pixel accuracy", "F1", "TP", "FN"):
        assert label in html
    assert f"{metrics['dice']:.4f}" in html and "not a medical device" in html


def test_before_after_table_shows_both_rows_and_the_change():
    from glassbox_xai.napari.layers import before_after_html

    before = {"dice": 0.90, "jaccard": 0.82, "threshold_jaccard": 0.80, "n_images": 20}
    after = {"dice": 0.92, "jaccard": 0.85, "threshold_jaccard": 0.81, "n_images": 20}
    html = before_after_html({"before": before, "after": after})
    assert "On 20 held-out images" in html and "0.900" in html and "0.920" in html and "+0.020" in html
    assert "precision" not in html  # only the metrics both rows have
    assert "held-out folder" in before_after_html(None) and "medical device" in before_after_html(None)


def test_faithfulness_table_has_one_column_per_method():
    from glassbox_xai.napari.layers import faithfulness_html

    html = faithfulness_html({"saliency": {"deletion_auc": 0.5, "insertion_auc": 0.7},
                              "ig": {"deletion_auc": 0.25, "insertion_auc": 0.75, "completeness_error": 0.004}})
    assert "<th>saliency</th><th>IG</th>" in html
    assert "<tr><td>IG error</td><td></td><td align='right'>0.004</td></tr>" in html
    assert "in truth" not in html  # no method measured it
