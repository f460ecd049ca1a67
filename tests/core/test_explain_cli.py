"""glassbox explain: files, shapes, JSON keys, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import tifffile

from data_paths import ISIC_IMAGES, ISIC_MASKS
from glassbox_xai.cli import main


def test_explain_all_writes_native_maps_figures_and_numbers(tiny_bundle, val_ids, tmp_path, capsys):
    image_id = val_ids[0]
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(ISIC_IMAGES / f"{image_id}.jpg", folder)
    shutil.copy(ISIC_MASKS / f"{image_id}_segmentation.png", folder)
    out = tmp_path / "out"
    assert main(["explain", str(folder), "-o", str(out), "--model", str(tiny_bundle), "--target", "truth", "--steps", "8"]) == 0
    result = out / image_id
    report = json.loads((result / "explain.json").read_text())
    assert "completeness_error" in report and report["target"] == "truth"
    assert {"saliency", "saliency-sigmoid", "ig"} <= set(report["faithfulness"])
    assert 0.0 <= report["faithfulness"]["saliency"]["mass_inside_truth"] <= 1.0
    for name in ("confidence", "superpixel_confidence", "saliency", "saliency-sigmoid", "integrated_gradients", "gradcam_output_logits", "attention_attention0"):
        values = tifffile.imread(result / "maps" / f"{name}.tif")
        assert values.shape == (512, 512) and values.dtype == np.float32, name
    for sheet in ("gradcam_encoder.png", "gradcam_attention.png", "gradcam_decoder.png", "gradcam_output.png", "saliency.png"):
        assert (result / sheet).stat().st_size > 5000, sheet
    assert "map(s) in" in capsys.readouterr().out


def test_explain_refuses_truth_target_without_masks(tiny_bundle, native_images, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(native_images[0], folder)
    assert main(["explain", str(folder), "-o", str(tmp_path / "o"), "--model", str(tiny_bundle), "--target", "truth"]) == 2
    assert "--target truth needs a mask for every image" in capsys.readouterr().err
