"""glassbox explain: files, shapes, JSON keys, and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile

from data_paths import ISIC_IMAGES, ISIC_MASKS
from glassbox_xai.cli import main


def test_explain_all_writes_maps_figures_and_numbers(tiny_bundle, val_ids, tmp_path, capsys):
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
    with np.load(result / "maps.npz") as store:
        for name in ("confidence", "superpixel confidence", "saliency", "saliency-sigmoid", "integrated gradients", "gradcam output_logits", "attention attention0"):
            assert store[name].shape == (512, 512) and store[name].dtype in (np.float16, np.float32), name
    sheets = [f"{method}_{stage}.png" for method in ("gradcam", "hirescam") for stage in ("encoder", "attention", "decoder", "output")]
    for sheet in (*sheets, "saliency.png"):
        assert (result / sheet).stat().st_size > 5000, sheet
    assert "map(s) in" in capsys.readouterr().out


def test_explain_refuses_truth_target_without_masks(tiny_bundle, native_images, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(native_images[0], folder)
    assert main(["explain", str(folder), "-o", str(tmp_path / "o"), "--model", str(tiny_bundle), "--target", "truth"]) == 2
    assert "--target truth needs a mask for every image" in capsys.readouterr().err


def _elongated(path, rows: int, cols: int):
    """A real photograph squeezed to rows x cols (a degenerate but valid image)."""
    from PIL import Image

    with Image.open(ISIC_IMAGES / "ISIC_0000000.jpg") as photo:
        photo.resize((cols, rows)).save(path)
    return path


def test_elongated_image_then_a_normal_one_are_both_explained(tiny_bundle, val_ids, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _elongated(folder / "ISIC_0000001.png", 10, 10_000)  # sorts first: the bad one must not sink the run
    shutil.copy(ISIC_IMAGES / f"{val_ids[0]}.jpg", folder / "ISIC_9999999.jpg")
    out = tmp_path / "out"
    assert main(["explain", str(folder), "-o", str(out), "--model", str(tiny_bundle), "--method", "saliency", "--save-maps"]) == 0
    run = json.loads((out / "explain_run.json").read_text())
    assert [e["id"] for e in run["explained"]] == ["ISIC_0000001", "ISIC_9999999"] and run["failures"] == []
    assert tifffile.imread(out / "ISIC_0000001" / "maps" / "saliency.tif").shape == (10, 10_000)
    assert tifffile.imread(out / "ISIC_9999999" / "maps" / "saliency.tif").shape == (512, 512)
    with np.load(out / "ISIC_0000001" / "maps.npz") as store:
        assert store["saliency"].shape == (10, 512)  # the compact store keeps all 10 rows
    assert (out / "ISIC_0000001" / "saliency.png").stat().st_size > 5000


def test_too_thin_image_is_skipped_with_its_reason_and_the_next_done(tiny_bundle, val_ids, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    thin = _elongated(folder / "ISIC_0000001.png", 1, 600)  # one pixel high
    shutil.copy(ISIC_IMAGES / f"{val_ids[0]}.jpg", folder / "ISIC_9999999.jpg")
    out = tmp_path / "out"
    assert main(["explain", str(folder), "-o", str(out), "--model", str(tiny_bundle), "--method", "confidence"]) == 1
    run = json.loads((out / "explain_run.json").read_text())
    (failure,) = run["failures"]
    assert failure["path"] == str(thin) and "600x1 is outside 8..20000 px a side" in failure["reason"]
    assert [e["id"] for e in run["explained"]] == ["ISIC_9999999"]
    assert f"skipped {thin}" in capsys.readouterr().err


@pytest.mark.parametrize("shape, lesion", [((10, 10_000), "some"), ((10_000, 10), "all"), ((1, 5), "some"), ((2, 2), "none"), ((300, 200), "some")])
def test_map_figure_draws_any_shape_and_any_mask(shape, lesion, tmp_path):
    from glassbox_xai.xai.figures import map_figure, stage_sheet

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    mask = {"none": np.zeros(shape, bool), "all": np.ones(shape, bool), "some": rng.random(shape) > 0.5}[lesion]
    values = rng.random(shape).astype(np.float32)
    assert map_figure(image, mask, values, "saliency", tmp_path / "f.png").stat().st_size > 5000
    assert stage_sheet(image, {"a": values, "b": values}, "encoder", tmp_path / "s.png").stat().st_size > 5000


def test_working_copy_keeps_aspect_and_a_minimum_side():
    from glassbox_xai.xai.explain_files import working_shape

    assert working_shape((7000, 7000)) == (1024, 1024)
    assert working_shape((2592, 3872)) == (685, 1024)
    assert working_shape((10, 10_000)) == (10, 1024)
    assert working_shape((60, 10_000)) == (32, 1024)
    assert working_shape((800, 600)) == (800, 600)


def test_maps_of_a_large_photograph_match_those_computed_at_native_size(tiny_bundle, native_images):
    """The working copy changes the maps only by interpolation: compare with the panel
    computed on the full photograph (a real 3,872 x 2,592 ISIC image)."""
    from glassbox_xai.data.io import read_image
    from glassbox_xai.inference import Segmenter
    from glassbox_xai.jobs import drive
    from glassbox_xai.xai.explain_files import explain_bounded, resize_map
    from glassbox_xai.xai.panel import explain

    photo = max(native_images, key=lambda p: p.stat().st_size)
    image = read_image(photo)
    assert max(image.shape[:2]) > 2048
    segmenter = Segmenter.from_bundle(tiny_bundle)
    methods = ("confidence", "saliency", "gradcam")
    full = drive(explain(segmenter, image, methods))
    small, bounded = drive(explain_bounded(segmenter, image, methods))
    assert max(small.shape[:2]) == 1024 and set(bounded.maps) == set(full.maps)
    for name in ("confidence", "saliency", "gradcam output_logits"):
        ours = resize_map(name, bounded.maps[name], image.shape[:2])
        reference = full.maps[name]
        assert ours.shape == reference.shape
        scale = float(np.abs(reference).max()) or 1.0
        assert np.abs(ours - reference).mean() < 0.02 * scale, name
        assert np.corrcoef(ours.ravel()[::97], reference.ravel()[::97])[0, 1] > 0.98, name


def test_worker_explains_a_large_photograph_on_a_shrunk_copy(tiny_bundle, native_images):
    """The napari worker's explain: maps come back at the size of image[::step, ::step]
    (never computed at full size), with a drawn target mask shrunk alongside."""
    from glassbox_xai.data.io import read_image
    from glassbox_xai.jobs import drive
    from glassbox_xai.worker.server import MAX_MAP_SIDE, WorkerState, op_explain

    image = read_image(max(native_images, key=lambda p: p.stat().st_size))
    drawn = np.zeros(image.shape[:2], bool)
    drawn[image.shape[0] // 3 : image.shape[0] // 2, image.shape[1] // 3 : image.shape[1] // 2] = True
    result = drive(op_explain(WorkerState(), image, str(tiny_bundle), ("confidence", "saliency"), target=drawn))
    step = result["step"]
    assert step == int(np.ceil(max(image.shape[:2]) / MAX_MAP_SIDE)) > 1
    expected = image[::step, ::step].shape[:2]
    assert {m.shape for m in result["maps"].values()} == {expected}
    assert result["faithfulness"]["saliency"]
