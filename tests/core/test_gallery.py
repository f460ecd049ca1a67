"""Galleries over a folder with masks: the attribution share against hand-computable
truths, the order of the three groups, the scoring job on real photographs, the sheets
on disk, ``glassbox explain-folder`` and the Compare widget's worker operation."""

from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from data_paths import copy_dev_val

from glassbox_xai.data.layout import discover
from glassbox_xai.inference import Segmenter
from glassbox_xai.jobs import drive
from glassbox_xai.metrics import Confusion, scores
from glassbox_xai.xai.base import Explainer
from glassbox_xai.xai.explain_files import to_working
from glassbox_xai.xai.faithfulness import mass_inside
from glassbox_xai.xai.gallery import (
    GROUPS,
    CaseScore,
    MapChoice,
    attribution_share,
    map_choices,
    read_case,
    score_folder,
    select_groups,
)
from glassbox_xai.xai.gallery_sheets import SHEET_FILES, write_gallery
from glassbox_xai.xai.gradcam import gradcam

N_IMAGES = 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Four real dev_val photographs with their masks beside them."""
    out = tmp_path_factory.mktemp("gallery_folder")
    copy_dev_val(out, N_IMAGES)
    return out


@pytest.fixture(scope="module")
def samples(folder):
    return discover(folder, require_masks=True)


@pytest.fixture(scope="module")
def segmenter(tiny_bundle):
    """The tiny model at a threshold so low that it predicts a lesion everywhere (a target to explain)."""
    return Segmenter.from_bundle(tiny_bundle, threshold=1e-6)


def _mask(rows: int, cols: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((rows, cols), bool)
    mask[top : top + height, left : left + width] = True
    return mask


@pytest.mark.parametrize("kind, expected", [
    ("inside", 1.0),            # every bit of attribution on the lesion
    ("outside", 0.0),           # none of it
    ("uniform", 16 / 64),       # a flat map: the mask's area, 4 x 4 of 8 x 8
    ("signed", 2 / 3),          # -2 inside, +1 outside: absolute values count
])
def test_share_against_hand_computed_truths(kind, expected):
    truth = _mask(8, 8, 2, 2, 4, 4)
    values = {"inside": truth * 0.7, "outside": (~truth) * 3.0, "uniform": np.ones((8, 8))}.get(kind)
    if kind == "signed":
        values = np.zeros((8, 8))
        values[3, 3], values[0, 0] = -2.0, 1.0
    assert attribution_share(np.asarray(values, np.float32), truth) == pytest.approx(expected)


def test_a_map_without_attribution_has_no_share():
    assert math.isnan(attribution_share(np.zeros((4, 4), np.float32), _mask(4, 4, 0, 0, 2, 2)))


def test_groups_are_ordered_worst_first_and_best_first_and_never_overlap():
    cases = [CaseScore(f"c{i}", dice, {"m": share, "other": 0.5}) for i, (dice, share) in
             enumerate([(0.9, 0.80), (0.2, 0.95), (0.5, 0.10), (0.7, math.nan), (0.1, 0.40), (0.95, 0.60)])]
    groups = select_groups(cases, "m", n=2)
    assert list(groups) == list(GROUPS)
    assert groups["failures"] == ["c4", "c1"]                     # Dice 0.1, 0.2
    assert groups["good explanations"] == ["c1", "c0"]            # share 0.95, 0.80
    assert groups["bad explanations"] == ["c2", "c4"]             # share 0.10, 0.40; c3 has no share
    few = select_groups(cases[:3], "m", n=5)                      # 3 scored images: 2 good, 1 bad, none in both
    assert few["good explanations"] == ["c1", "c0"] and few["bad explanations"] == ["c2"] and len(few["failures"]) == 3


def test_map_choices_pair_each_cam_with_each_layer(segmenter):
    model = segmenter.bundle.model
    default = map_choices(model)
    assert [c.name for c in default] == ["gradcam decoder0_conv2"]
    choices = map_choices(model, ["hirescam", "saliency"], ["decoder0_conv1", "decoder1_conv2"])
    assert [c.name for c in choices] == ["hirescam decoder0_conv1", "hirescam decoder1_conv2", "saliency"]
    with pytest.raises(ValueError, match="unknown gallery method"):
        map_choices(model, ["confidence"])
    with pytest.raises(ValueError, match="has no layer 'nope'; expected a convolution"):
        map_choices(model, ["gradcam"], ["nope"])


def test_scores_match_a_direct_computation(segmenter, samples):
    choices = map_choices(segmenter.bundle.model, ["gradcam", "saliency"])
    progress = []
    gallery = drive(score_folder(segmenter, samples, choices, n=2), progress.append)
    assert [c.id for c in gallery.cases] == [s.id for s in samples] and gallery.failures == []
    assert progress[-1].done == progress[-1].total == N_IMAGES
    assert all(p.total == N_IMAGES for p in progress)  # the methods' own steps do not reset the bar
    explainer = Explainer(segmenter.bundle.model, segmenter.threshold)
    for sample, case in zip(samples, gallery.cases):
        image, truth = read_case(sample)
        assert case.dice == pytest.approx(scores(Confusion.from_masks(segmenter.predict(image).mask, truth))["dice"])
        small, small_truth = to_working(image, truth, 512)
        cam = drive(gradcam(explainer, small, layers=["decoder0_conv2"])).maps["decoder0_conv2"]
        assert case.shares["gradcam decoder0_conv2"] == pytest.approx(mass_inside(cam, small_truth), abs=1e-6)
        assert 0.0 <= case.shares["saliency"] <= 1.0
    assert gallery.groups == select_groups(gallery.cases, "gradcam decoder0_conv2", 2)


@pytest.fixture
def synthetic(tmp_path, rng):
    """Three random S x S photographs (PNG, lossless) with rectangular masks: at the linear
    model's own size, so no resizing blurs a map."""
    from PIL import Image

    from xai_truths import S

    folder = tmp_path / "synthetic"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (S, S, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
        Image.fromarray(_mask(S, S, 4 + 3 * i, 6, 10, 8 + 4 * i).astype(np.uint8) * 255).save(folder / f"img{i}_segmentation.png")
    return discover(folder, require_masks=True)


@pytest.mark.parametrize("target", ["truth", "prediction"])
def test_saliency_of_the_linear_model_shares_what_its_target_shares(linear, synthetic, target):
    """logits = W . x + 0.1 per pixel, so the gradient of the mean logit over a region is W on
    the region and 0 elsewhere: the saliency share is 1 for the truth target, and for the
    predicted lesion (logit > 0) the share of its pixels inside the expert mask."""
    from xai_truths import W

    model = SimpleNamespace(bundle=SimpleNamespace(model=linear), threshold=0.5)
    gallery = drive(score_folder(model, synthetic, [MapChoice("saliency")], target=target, n=1, dice={s.id: 0.5 for s in synthetic}))
    for sample, case in zip(synthetic, gallery.cases):
        image, truth = read_case(sample)
        predicted = (image.astype(np.float32) / 255) @ W + 0.1 > 0
        expected = 1.0 if target == "truth" else (predicted & truth).sum() / predicted.sum()
        assert case.shares["saliency"] == pytest.approx(expected, abs=1e-6)
        assert case.dice == 0.5  # taken as given: the model was not run for it


def test_no_predicted_lesion_keeps_the_dice_and_no_share(tiny_bundle, samples):
    blind = Segmenter.from_bundle(tiny_bundle, threshold=1 - 1e-7)
    gallery = drive(score_folder(blind, samples, map_choices(blind.bundle.model), n=3))
    assert all(math.isnan(c.shares["gradcam decoder0_conv2"]) for c in gallery.cases)
    assert len(gallery.groups["failures"]) == 3 and gallery.groups["good explanations"] == gallery.groups["bad explanations"] == []


def test_score_folder_refuses_what_it_cannot_score(segmenter, samples, tmp_path):
    choices = map_choices(segmenter.bundle.model)
    with pytest.raises(ValueError, match="no images"):
        drive(score_folder(segmenter, [], choices))
    with pytest.raises(ValueError, match="have no mask"):
        drive(score_folder(segmenter, [SimpleNamespace(id="x", image=tmp_path / "x.jpg", mask=None)], choices))
    with pytest.raises(ValueError, match="unknown gallery target"):
        drive(score_folder(segmenter, samples, choices, target="background"))


def test_sheets_csv_and_json_are_written(segmenter, samples, tmp_path):
    choices = map_choices(segmenter.bundle.model, ["gradcam", "hirescam"])
    gallery = drive(score_folder(segmenter, samples, choices, n=2))
    paths = drive(write_gallery(segmenter, samples, gallery, choices, tmp_path / "out", meta={"model": "tiny"}))
    for group in GROUPS:
        assert paths[group] == tmp_path / "out" / SHEET_FILES[group] and paths[group].stat().st_size > 10_000
    with open(paths["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [c.id for c in gallery.cases]
    assert list(rows[0]) == ["id", "dice", "mask area", "share gradcam decoder0_conv2", "share hirescam decoder0_conv2", "groups"]
    for row, case in zip(rows, gallery.cases):
        assert float(row["dice"]) == pytest.approx(case.dice, abs=1e-4)
        assert float(row["mask area"]) == pytest.approx(read_case(next(s for s in samples if s.id == case.id))[1].mean(), abs=1e-4)
        assert float(row["share hirescam decoder0_conv2"]) == pytest.approx(case.shares["hirescam decoder0_conv2"], abs=1e-4)
    report = json.loads(paths["json"].read_text())
    assert report["groups"] == gallery.groups and report["model"] == "tiny" and report["ranked_by"] == "gradcam decoder0_conv2"
    assert set(report["sheets"].values()) == set(SHEET_FILES.values())


def test_explain_folder_command(tiny_bundle, folder, tmp_path, capsys):
    from glassbox_xai.cli import main

    out = tmp_path / "gallery"
    args = ["explain-folder", str(folder), "-o", str(out), "--model", str(tiny_bundle), "--threshold", "1e-6", "--rows", "2"]
    assert main([*args, "--method", "hirescam", "--layer", "decoder1_conv2"]) == 0
    printed = capsys.readouterr().out
    assert "failures: 2 image(s)" in printed and "gallery.csv" in printed
    assert all((out / name).is_file() for name in (*SHEET_FILES.values(), "gallery.csv", "gallery.json"))
    assert json.loads((out / "gallery.json").read_text())["maps"] == ["hirescam decoder1_conv2"]
    assert main([*args, "--layer", "nope"]) == 2
    assert "has no layer 'nope'" in capsys.readouterr().err


def test_explain_folder_needs_every_mask(tiny_bundle, tmp_path, capsys):
    from glassbox_xai.cli import GALLERY_METHODS, main
    from glassbox_xai.xai import gallery

    assert GALLERY_METHODS == gallery.GALLERY_METHODS
    copy_dev_val(tmp_path / "in", 1, masks=False)
    assert main(["explain-folder", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--model", str(tiny_bundle)]) == 2
    assert "have no mask" in capsys.readouterr().err


def test_compare_folder_operation_adds_galleries(tiny_bundle, folder):
    from glassbox_xai.worker.server import WorkerState, op_compare_folder

    result = drive(op_compare_folder(WorkerState(), str(folder), [str(tiny_bundle)], ["tiny"], gallery="saliency", n_gallery=2))
    (variant,) = result["variants"]
    gallery = result["galleries"]["tiny"]
    assert gallery["maps"] == ["saliency"] and list(gallery["groups"]) == list(GROUPS)
    assert {c["id"]: c["dice"] for c in gallery["cases"]} == variant["dice"]  # the comparison's Dice, reused
    assert gallery["groups"]["failures"] == sorted(variant["dice"], key=variant["dice"].get)[:2]
    assert drive(op_compare_folder(WorkerState(), str(folder), [str(tiny_bundle)], ["tiny"]))["galleries"] == {}


def test_the_compare_widget_lists_each_group_headlessly():
    from glassbox_xai.napari.layers import GALLERY_GROUPS, gallery_html, gallery_items

    assert GALLERY_GROUPS == GROUPS
    one = {"maps": ["gradcam x"], "target": "prediction", "failures": [],
           "cases": [{"id": "a", "dice": 0.5, "shares": {"gradcam x": 0.25}}, {"id": "b", "dice": 0.9, "shares": {"gradcam x": math.nan}}],
           "groups": {"failures": ["a", "b"], "good explanations": ["a"], "bad explanations": []}}
    items = gallery_items({"dice": one})
    assert items == {"failures": [("a · Dice 0.500 · 25%", "a"), ("b · Dice 0.900 · no map", "b")],
                     "good explanations": [("a · Dice 0.500 · 25%", "a")], "bad explanations": []}
    two = gallery_items({"dice": one, "recall": one})
    assert [label for label, _ in two["good explanations"]] == ["a · Dice 0.500 · 25% · dice", "a · Dice 0.500 · 25% · recall"]
    assert "dice: gradcam x puts on average 25.0% of its attribution inside the expert mask (1 of 2 images have a map)" in gallery_html({"dice": one})
    assert gallery_html({}) == ""
