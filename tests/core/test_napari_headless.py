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


def test_faithfulness_table_has_one_row_per_method():
    from glassbox_xai.napari.layers import faithfulness_html

    html = faithfulness_html({"saliency": {"deletion_auc": 0.5, "insertion_auc": 0.7},
                              "ig": {"deletion_auc": 0.25, "insertion_auc": 0.75, "completeness_error": 0.004}})
    assert "<th></th><th>del. ↓</th><th>ins. ↑</th><th>IG err.</th></tr>" in html  # one column per measure
    assert "<tr><td>IG</td><td align='right'>0.250</td><td align='right'>0.750</td><td align='right'>0.004</td></tr>" in html
    assert "<tr><td>saliency</td><td align='right'>0.500</td><td align='right'>0.700</td><td></td></tr>" in html
    assert "<th>in GT</th>" not in html  # no method measured it


ALL_MAPS = ["probability", "confidence", "superpixel confidence", "saliency", "saliency-sigmoid", "integrated gradients",
            "gradcam", "attention attention0", "attention attention1"]


def test_every_map_has_a_legend_and_a_short_distinct_layer_name():
    from glassbox_xai.napari.layers import map_layer_name
    from glassbox_xai.xai.legend import LEGENDS, legend_for

    names = [map_layer_name("ISIC_0000013", m, "dice") for m in ALL_MAPS]
    assert len(set(names)) == len(names)
    assert all(len(name) <= len("ISIC_0000013  (dice)") + 10 for name in names), names
    assert map_layer_name("ISIC_0000013", "attention attention1", "dice") == "ISIC_0000013 attn 1 (dice)"
    assert map_layer_name("I", "gradcam", "dice") != map_layer_name("I", "gradcam decoder0_conv2", "dice")  # stack vs a stray layer
    for key, legend in LEGENDS.items():
        assert legend.meaning and legend.units and legend.title and 0 < len(legend.short) <= 10, key
    assert legend_for("gradcam decoder0_conv2") == (LEGENDS["gradcam"], "decoder0_conv2")
    with pytest.raises(KeyError, match="no legend for map 'mystery'"):
        legend_for("mystery")
    with pytest.raises(KeyError, match="no legend"):
        legend_for("saliency extra")  # not a per-layer family


def test_legend_entries_are_checked_and_the_table_extends():
    from glassbox_xai.xai.legend import MapLegend

    with pytest.raises(ValueError, match="scale 'log'"):
        MapLegend("x", "x", "x", "x", "x", scale="log")
    with pytest.raises(ValueError, match="palette 'rainbow'"):
        MapLegend("x", "x", "x", "x", "x", palette="rainbow")


@pytest.mark.parametrize("name, nothing", [(m, 0.0) for m in ALL_MAPS if m not in ("confidence", "integrated gradients")]
                         + [("integrated gradients", 0.5), ("confidence", 1.0)])
def test_map_colormaps_are_transparent_where_the_map_says_nothing(name, nothing):
    from glassbox_xai.napari.layers import map_style
    from glassbox_xai.xai.legend import palette_at

    style = map_style(name, np.linspace(-2, 3, 100, dtype=np.float32).reshape(10, 10))
    cmap = style["colormap"]
    assert cmap["name"].startswith("glassbox ") and len(cmap["colors"]) == len(cmap["controls"])
    assert np.interp(nothing, cmap["controls"], [c[3] for c in cmap["colors"]]) == 0.0
    assert style["blending"] == "translucent"
    low, high = style["contrast_limits"]
    assert low < high
    assert palette_at(cmap["name"].split(" ", 1)[1], np.array([nothing]))[0, 3] == 0.0


@pytest.mark.parametrize("scale, values, expected", [
    ("unit", np.array([0.2, 0.4]), (0.0, 1.0)),
    ("sequential", np.zeros(4), (0.0, 1.0)),  # an all-zero map still has a range
    ("sequential", np.array([0.0, 2.0]), (0.0, pytest.approx(1.99))),
    ("diverging", np.array([-4.0, 1.0]), (pytest.approx(-3.985), pytest.approx(3.985))),
])
def test_value_ranges(scale, values, expected):
    from glassbox_xai.xai.legend import MapLegend

    assert MapLegend("m", "m", "m", "m", "m", scale=scale).value_range(values) == expected


def test_legend_html_shows_range_units_meaning_and_the_network_layer():
    from glassbox_xai.napari.layers import legend_html, map_metadata
    from glassbox_xai.xai.legend import LEGENDS

    meta = map_metadata("ISIC_0000013", "gradcam", "dice", ["encoder: encoder1_conv1", "decoder: decoder0_conv2"])
    html = legend_html(meta, (0.0, 1.0), plane=1)
    assert "layer 2/2: <b>decoder: decoder0_conv2</b>" in html and LEGENDS["gradcam"].meaning in html
    assert ">0<" in html and ">1<" in html and LEGENDS["gradcam"].units in html and "(dice)" in html
    ig = legend_html(map_metadata("ISIC_0000013", "integrated gradients", "recall"), (-0.0123, 0.0123))
    assert "-0.0123" in ig and "0.0123" in ig and "red raises" in ig
    assert "attention coefficients, attention0" in legend_html(map_metadata("I", "attention attention0", "dice"), (0, 1))



def test_confidence_legend_says_what_its_colours_mean_from_the_card():
    from glassbox_xai.napari.layers import legend_html, map_metadata
    from glassbox_xai.xai.legend import calibration_note

    frequency = [0.02, 0.29, 0.34, 0.38, 0.39, 0.42, 0.47, 0.48, 0.5, 0.54, 0.58, 0.62, 0.69, 0.84, 0.99]
    calibration = {"temperature": 2.23, "ece": 0.0196, "ece_uncalibrated": 0.0439, "uncertainty_auroc": 0.906,
                   "split": "dev_val", "reliability": {"frequency": frequency}}
    note = calibration_note(calibration)
    assert "temperature 2.23" in note and "near 0.1, 29% are lesion" in note and "near 0.5, 48%" in note and "near 0.9, 84%" in note
    assert "ECE 0.020, 0.044 before" in note and "AUROC 0.91" in note
    for name in ("confidence", "superpixel confidence"):
        assert note in legend_html(map_metadata("I", name, "dice", calibration=calibration), (0, 1))
    assert "calibration" not in map_metadata("I", "gradcam", "dice", calibration=calibration)
    assert "Not calibrated" in legend_html(map_metadata("I", "confidence", "custom", calibration={}), (0, 1))
    assert "no reliability measurement" in calibration_note({"temperature": 2.0})
    assert "calibration" not in map_metadata("I", "confidence", "dice")  # no card information, no claim

def test_variant_colours():
    from glassbox_xai.napari.layers import variant_color, variant_colors

    assert variant_colors(["dice", "balanced", "recall"]) == ["#ff00cc", "#ffd400", "#00c8ff"]
    assert len({variant_color("v1", 0), variant_color("v2", 1)}) == 2


def test_likely_device_reads_the_driver_and_respects_cuda_visible_devices(tmp_path):
    from glassbox_xai.device_probe import likely_device

    assert likely_device({}, tmp_path) == "CPU"
    (tmp_path / "0000:01:00.0").mkdir()
    (tmp_path / "0000:01:00.0" / "information").write_text("Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: 42\n")
    assert likely_device({}, tmp_path) == "GPU (NVIDIA H100 80GB HBM3)"
    assert likely_device({"CUDA_VISIBLE_DEVICES": "-1"}, tmp_path).startswith("CPU (GPUs hidden")


def test_faithfulness_table_compares_with_a_random_order_and_says_every_warning():
    from glassbox_xai.napari.layers import faithfulness_html

    random = {"random_deletion_auc": 0.936, "random_insertion_auc": 0.937}
    html = faithfulness_html({
        "gradcam": {"deletion_auc": 0.643, "insertion_auc": 0.664, **random},
        "scorecam": {"deletion_auc": 0.937, "insertion_auc": 0.937, **random},
        "ig": {"deletion_auc": float("nan"), "insertion_auc": 0.9, "completeness_error": 0.084, **random,
               "completeness_warning": "completeness error 8.4% is above 1%: use more steps (--steps 128)"},
    })
    assert "<tr><td><i>random order</i></td><td align='right'><i>0.936</i></td><td align='right'><i>0.937</i></td><td></td></tr>" in html
    assert "<td align='right'>0.643</td>" in html and "<td align='right'>0.937*</td>" in html  # Score-CAM no better than random
    assert "this map does not show which pixels" in html and "<td align='right'>0.084 ⚠</td>" in html
    assert "⚠ IG: completeness error 8.4% is above 1%: use more steps" in html
    assert "<td align='right'>n/a</td>" in html and "n/a: the curve is undefined" in html and "nan" not in html
