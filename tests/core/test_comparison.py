"""Variants compared over a folder with masks: the core function, the worker op, and
the HTML of the Compare widget's folder view (headless)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_paths import copy_dev_val

from glassbox_xai.comparison import PICK_KINDS, compare_variants
from glassbox_xai.data.io import MaskError, read_image, read_mask
from glassbox_xai.data.layout import discover
from glassbox_xai.inference import Segmenter
from glassbox_xai.jobs import drive
from glassbox_xai.metrics import Confusion, macro_average, scores
from glassbox_xai.model.registry import resolve_bundle
from glassbox_xai.napari.layers import (
    case_choices,
    confusion_html,
    folder_comparison_html,
)

N_IMAGES = 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory, val_ids):
    """Four real dev_val photographs with their masks beside them (a flat folder)."""
    out = tmp_path_factory.mktemp("compare_folder")
    copy_dev_val(out, N_IMAGES)
    return out


@pytest.fixture(scope="module")
def compared(folder, tiny_bundle):
    bundles = [("tiny", tiny_bundle), ("dice", resolve_bundle("dice"))]
    progress = []
    variants = drive(compare_variants(bundles, discover(folder, require_masks=True), n_picks=2), progress.append)
    return bundles, variants, progress


def test_each_variant_scores_as_computed_directly(folder, compared):
    bundles, variants, _ = compared
    samples = discover(folder, require_masks=True)
    assert [v.name for v in variants] == ["tiny", "dice"]
    for (name, bundle), variant in zip(bundles, variants):
        segmenter = Segmenter.from_bundle(bundle)
        confusions = [Confusion.from_masks(segmenter.predict(read_image(s.image)).mask, read_mask(s.mask)) for s in samples]
        per_image = [scores(c) for c in confusions]
        pooled = sum(confusions, Confusion(0, 0, 0, 0))
        assert variant.n_images == N_IMAGES and variant.bundle == str(bundle)
        assert variant.metrics == pytest.approx(macro_average(per_image), abs=2e-3)
        assert list(variant.dice) == [s.id for s in samples]
        assert list(variant.dice.values()) == pytest.approx([row["dice"] for row in per_image], abs=2e-3)
        assert np.allclose(list(variant.confusion.values()), list(pooled.as_dict().values()), atol=pooled.total * 1e-3)
        assert variant.pooled == pytest.approx(scores(Confusion(**variant.confusion)))
        assert variant.failures == []


def test_picks_are_folder_ids_ordered_by_dice(folder, compared):
    _, variants, _ = compared
    ids = {p.stem for p in folder.glob("*.jpg")}
    for variant in variants:
        dice = variant.dice
        assert set(variant.picks) == set(PICK_KINDS)
        assert all(len(variant.picks[k]) == 2 and set(variant.picks[k]) <= ids for k in PICK_KINDS)
        assert dice[variant.picks["best"][0]] == max(dice.values())
        assert dice[variant.picks["worst"][0]] == min(dice.values())
        median = float(np.median(list(dice.values())))
        assert abs(dice[variant.picks["typical"][0]] - median) == min(abs(d - median) for d in dice.values())


def test_progress_covers_every_variant_and_image(compared):
    bundles, _, progress = compared
    total = len(bundles) * N_IMAGES
    assert all(p.total == total for p in progress)
    assert progress[-1].done == total and any(p.message.startswith("dice:") for p in progress)


def test_result_is_plain_data(compared):
    import json

    _, variants, _ = compared
    plain = [v.as_dict() for v in variants]
    assert json.loads(json.dumps(plain)) == plain


def test_an_unreadable_image_is_reported_not_fatal(folder, tmp_path, tiny_bundle):
    for path in folder.iterdir():
        shutil.copy(path, tmp_path)
    (tmp_path / "ISIC_9999999.jpg").write_bytes(b"not a jpeg")
    shutil.copy(next(folder.glob("*_segmentation.png")), tmp_path / "ISIC_9999999_segmentation.png")
    variants = drive(compare_variants([("tiny", tiny_bundle)], discover(tmp_path, require_masks=True)))
    (variant,) = variants
    assert variant.n_images == N_IMAGES and "ISIC_9999999" not in variant.dice
    assert [f["id"] for f in variant.failures] == ["ISIC_9999999"] and variant.failures[0]["message"]


def test_a_folder_without_masks_is_refused_before_any_model_loads(folder, tmp_path, tiny_bundle):
    for path in folder.glob("*.jpg"):
        shutil.copy(path, tmp_path)
    with pytest.raises(MaskError, match=r"4 image\(s\) have no mask"):
        discover(tmp_path, require_masks=True)
    samples = discover(tmp_path)
    with pytest.raises(MaskError, match="needs every image's expert mask"):
        next(compare_variants([("tiny", tiny_bundle)], samples, load=lambda path: pytest.fail("a model was loaded")))


def test_the_worker_op_returns_paths_and_refuses_a_folder_without_masks(folder, tmp_path, tiny_bundle):
    from glassbox_xai.worker.server import OPS, WorkerState

    state = WorkerState()
    result = drive(OPS["compare_folder"](state, folder=str(folder), bundles=[str(tiny_bundle)], n_picks=1))
    (variant,) = result["variants"]
    assert variant["name"] == "tiny" and set(result["images"]) == set(variant["dice"])
    assert all(result["masks"][i].endswith(f"{i}_segmentation.png") for i in result["images"])
    assert result["card"]["name"] == f"1 model(s) on {N_IMAGES} images" and result["device"]
    shutil.copy(next(folder.glob("*.jpg")), tmp_path)
    with pytest.raises(MaskError, match="have no mask"):
        drive(OPS["compare_folder"](state, folder=str(tmp_path), bundles=[str(tiny_bundle)]))


def test_folder_html_shows_macro_metrics_confusion_and_failures():
    variants = [
        {"name": "dice", "n_images": 3, "metrics": dict.fromkeys(("accuracy", "sensitivity", "specificity", "precision", "jaccard",
                                                                     "threshold_jaccard", "dice", "f1"), 0.8125),
         "confusion": {"tp": 250_000, "fp": 50_000, "fn": 25_000, "tn": 675_000}, "dice": {"a": 0.9, "b": 0.8, "c": 0.7},
         "picks": {"best": ["a"], "typical": ["b"], "worst": ["c"]}, "failures": [{"id": "bad", "message": "corrupt"}]},
        {"name": "my-model", "n_images": 3, "metrics": dict.fromkeys(("accuracy", "sensitivity", "specificity", "precision", "jaccard",
                                                                         "threshold_jaccard", "dice", "f1"), 0.5),
         "confusion": {"tp": 1, "fp": 2, "fn": 3, "tn": 4}, "dice": {"a": 0.5, "b": 0.4, "c": 0.6},
         "picks": {"best": ["c"], "typical": ["a"], "worst": ["b"]}, "failures": [{"id": "bad", "message": "corrupt"}]},
    ]
    html = folder_comparison_html(variants)
    for text in ("Mean over 3 images", "Dice", "IoU (Jaccard)", "thresholded Jaccard", "pixel accuracy", "F1", "0.8125", "0.5000",
                 "#ff00cc'>dice<", ">my-model<", "1 image(s) could not be read", "bad", "not a medical device"):
        assert text in html
    confusion = confusion_html(variants)
    assert "TP 25.0% <small>(250k)</small>" in confusion and "TN 67.5%" in confusion and "FN 30.0% <small>(3)</small>" in confusion
    choices = case_choices(variants)
    assert choices[0] == ("dice · best · a · Dice 0.900", (0, "best", "a"))
    assert [value for _, value in choices][3:] == [(1, "best", "c"), (1, "typical", "a"), (1, "worst", "b")]
    assert len({value for _, value in choices}) == len(choices)
