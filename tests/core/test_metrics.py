"""Metrics: hand-computed values, edge cases, and agreement with the official ISIC scorer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from data_paths import ISIC_MASKS
from glassbox_xai.data.io import read_mask, write_mask
from glassbox_xai.jobs import drive
from glassbox_xai.evaluation import evaluate_predictions
from glassbox_xai.metrics import METRICS, Confusion, Evaluation, macro_average, scores

SCORER_KEYS = ("accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice")


def test_confusion_counts_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool)
    c = Confusion.from_masks(pred, truth)
    assert c == Confusion(tp=2, fp=1, fn=2, tn=3)
    s = scores(c)
    assert s["dice"] == pytest.approx(4 / 7)
    assert s["jaccard"] == pytest.approx(2 / 5)
    assert s["threshold_jaccard"] == 0.0
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["sensitivity"] == pytest.approx(0.5)
    assert s["specificity"] == pytest.approx(3 / 4)
    assert s["accuracy"] == pytest.approx(5 / 8)
    assert s["f1"] == pytest.approx(s["dice"])


@pytest.mark.parametrize(
    "pred, truth, expected",
    [
        # empty prediction, lesion in truth: nothing found
        (0, 1, {"dice": 0.0, "jaccard": 0.0, "sensitivity": 0.0, "precision": 1.0, "specificity": 1.0, "f1": 0.0}),
        # empty truth, something predicted: all false positives
        (1, 0, {"dice": 0.0, "jaccard": 0.0, "sensitivity": 1.0, "precision": 0.0, "specificity": 0.0, "f1": 0.0}),
        # both empty: a perfect answer
        (0, 0, {"dice": 1.0, "jaccard": 1.0, "threshold_jaccard": 1.0, "sensitivity": 1.0, "precision": 1.0, "specificity": 1.0, "f1": 1.0, "accuracy": 1.0}),
        # both full: a perfect answer too
        (1, 1, {"dice": 1.0, "jaccard": 1.0, "sensitivity": 1.0, "precision": 1.0, "specificity": 1.0, "accuracy": 1.0}),
    ],
    ids=["empty-prediction", "empty-truth", "both-empty", "both-full"],
)
def test_edge_cases(pred, truth, expected):
    s = scores(Confusion.from_masks(np.full((4, 4), pred, bool), np.full((4, 4), truth, bool)))
    for name, value in expected.items():
        assert s[name] == value, name


def test_threshold_jaccard_cuts_below_065():
    truth = np.zeros((10, 10), bool)
    truth[:, :5] = True
    good = truth.copy()
    good[:, 5:7] = True  # J = 50/70 = 0.714
    poor = truth.copy()
    poor[:, 5:8] = True  # J = 50/80 = 0.625
    assert scores(Confusion.from_masks(good, truth))["threshold_jaccard"] == pytest.approx(50 / 70)
    assert scores(Confusion.from_masks(poor, truth))["threshold_jaccard"] == 0.0


def test_shape_mismatch_and_empty_input_are_refused():
    with pytest.raises(ValueError, match=r"prediction shape \(2, 3\) differs from ground truth shape \(3, 2\)"):
        Confusion.from_masks(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no images"):
        macro_average([])


def test_pooled_metrics_use_summed_counts():
    a, b = Confusion(10, 0, 0, 90), Confusion(0, 5, 5, 90)
    ev = Evaluation(["a", "b"], [a, b])
    summary = ev.summary()
    assert summary["confusion"] == {"tp": 10, "fp": 5, "fn": 5, "tn": 180}
    assert summary["pooled"]["dice"] == pytest.approx(20 / 30)
    assert summary["dice"] == pytest.approx(0.5)  # macro: mean of 1.0 and 0.0
    assert set(METRICS) <= set(summary)


def test_empty_expert_masks_are_named_in_the_summary_and_only_then():
    blank = Evaluation(["a", "blank"], [Confusion(10, 0, 0, 90), Confusion(0, 7, 0, 93)])
    assert blank.empty_truth == ["blank"] and blank.summary()["empty_truth"] == ["blank"]
    assert blank.summary()["dice"] == pytest.approx(0.5)  # the blank mask scores 0, as the formula says
    assert "empty_truth" not in Evaluation(["a"], [Confusion(10, 0, 0, 90)]).summary()


def _perturbed(truth: np.ndarray, kind: int, other: np.ndarray) -> np.ndarray:
    """A prediction of varied quality made from a real expert mask."""
    if kind == 0:
        return ndimage.binary_erosion(truth, iterations=6)
    if kind == 1:
        return ndimage.binary_dilation(truth, iterations=15)
    if kind == 2:
        return np.roll(truth, (25, -40), axis=(0, 1))
    if kind == 3:
        return np.zeros_like(truth)  # empty prediction
    if kind == 4:
        return np.ones_like(truth)  # everything predicted
    return other  # another patient's mask: often below the 0.65 cut-off


def test_agrees_with_the_official_isic_scorer_on_real_masks(tmp_path, val_ids):
    from isic_challenge_scoring.segmentation import SegmentationScore

    truth_dir, pred_dir = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    ids = val_ids[:36]
    for n, image_id in enumerate(ids):
        name = f"{image_id}_segmentation.png"
        truth = read_mask(ISIC_MASKS / name)
        other = read_mask(ISIC_MASKS / f"{ids[(n + 1) % len(ids)]}_segmentation.png")
        (truth_dir / name).write_bytes((ISIC_MASKS / name).read_bytes())
        write_mask(pred_dir / name, _perturbed(truth, n % 6, other))
    # An image with no lesion at all in the truth, scored by both.
    write_mask(truth_dir / "ISIC_9999999_segmentation.png", np.zeros((64, 80), bool))
    write_mask(pred_dir / "ISIC_9999999_segmentation.png", np.eye(64, 80, dtype=bool))

    official = SegmentationScore.from_dir(truth_dir, pred_dir).macro_average
    ours = drive(evaluate_predictions(pred_dir, truth_dir)).summary()
    assert ours["n_images"] == 37
    assert 0.0 < ours["threshold_jaccard"] < ours["jaccard"] < 1.0  # the cut-off mattered
    for key in SCORER_KEYS:
        assert abs(ours[key] - float(official[key])) < 1e-9, (key, ours[key], float(official[key]))


def test_scoring_reads_predictions_as_the_scorer_does(tmp_path):
    """Soft 8-bit predictions count as lesion above 128, like the official scorer."""
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    write_mask(tmp_path / "truth" / "ISIC_0000001_segmentation.png", truth)
    soft = np.where(truth, 200, 100).astype(np.uint8)
    soft[5, 5] = 128  # exactly 128 is background
    (tmp_path / "pred").mkdir()
    Image.fromarray(soft).save(tmp_path / "pred" / "ISIC_0000001_segmentation.png")
    summary = drive(evaluate_predictions(tmp_path / "pred", tmp_path / "truth")).summary()
    assert summary["confusion"] == {"tp": 99, "fp": 0, "fn": 1, "tn": 300}
