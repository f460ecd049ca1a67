"""Segmentation metrics exactly as the ISIC 2018 challenge scores them.

Per image, from the confusion counts (TP, FP, FN, TN):

==================  ==========================  ======================================
metric              formula                     when the denominator is 0
==================  ==========================  ======================================
accuracy            (TP+TN) / all pixels        (never: an image has pixels)
sensitivity/recall  TP / (TP+FN)                1.0 (no lesion in the truth)
specificity         TN / (TN+FP)                1.0 (lesion covers the whole image)
precision           TP / (TP+FP)                1.0 (nothing predicted)
jaccard (IoU)       TP / (TP+FP+FN)             1.0 (both masks empty)
threshold_jaccard   jaccard if >= 0.65 else 0
dice                2TP / (2TP+FP+FN)           1.0 (both masks empty)
f1                  2PR / (P+R)                 0.0 when P+R = 0
==================  ==========================  ======================================

So an empty prediction of a non-empty truth scores Dice 0, Jaccard 0, recall 0,
precision 1; an empty truth with a non-empty prediction scores Dice 0, recall 1,
precision 0; both empty score 1 everywhere. With these conventions F1 equals Dice
on every image. Macro averages take the mean over images (the challenge's
ranking); pooled metrics apply the same formulas to the summed counts (what a
confusion matrix shows). The "freebie" conventions are the official scorer's
(``isic-challenge-scoring``), and a test checks agreement with it to 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from .calibration import CalibrationCounts

METRICS = ("accuracy", "sensitivity", "specificity", "precision", "jaccard", "threshold_jaccard", "dice", "f1")
JACCARD_THRESHOLD = 0.65


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of one image, or summed over many."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_masks(cls, prediction: np.ndarray, truth: np.ndarray) -> "Confusion":
        """Counts from two boolean (or 0/non-zero) masks of the same shape."""
        prediction = np.asarray(prediction).astype(bool, copy=False)
        truth = np.asarray(truth).astype(bool, copy=False)
        if prediction.shape != truth.shape:
            raise ValueError(f"prediction shape {prediction.shape} differs from ground truth shape {truth.shape}")
        tp = int(np.count_nonzero(prediction & truth))
        fp = int(np.count_nonzero(prediction)) - tp
        fn = int(np.count_nonzero(truth)) - tp
        return cls(tp=tp, fp=fp, fn=fn, tn=int(truth.size) - tp - fp - fn)

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def scores(c: Confusion) -> dict[str, float]:
    """All metrics of :data:`METRICS` for one confusion (see the module table)."""
    if c.total == 0:
        raise ValueError("cannot score an empty image (0 pixels)")
    recall = _ratio(c.tp, c.tp + c.fn)
    precision = _ratio(c.tp, c.tp + c.fp)
    jaccard = _ratio(c.tp, c.tp + c.fp + c.fn)
    return {
        "accuracy": (c.tp + c.tn) / c.total,
        "sensitivity": recall,
        "specificity": _ratio(c.tn, c.tn + c.fp),
        "precision": precision,
        "jaccard": jaccard,
        "threshold_jaccard": jaccard if jaccard >= JACCARD_THRESHOLD else 0.0,
        "dice": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def macro_average(per_image: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over images, as the challenge ranks submissions."""
    rows = list(per_image)
    if not rows:
        raise ValueError("no images to average")
    return {name: float(np.mean([row[name] for row in rows])) for name in METRICS}


@dataclass
class Evaluation:
    """Per-image confusions of a set, with macro and pooled summaries; with ``calibration``
    (the pixel counts of :mod:`glassbox_xai.calibration`, when probabilities were scored) the
    summary also says how calibrated they are at ``temperature``."""

    ids: list[str]
    confusions: list[Confusion]
    calibration: CalibrationCounts | None = None
    temperature: float = 1.0

    @property
    def per_image(self) -> list[dict[str, float]]:
        return [scores(c) for c in self.confusions]

    @property
    def pooled(self) -> Confusion:
        return sum(self.confusions, Confusion(0, 0, 0, 0))

    def summary(self) -> dict:
        """The JSON summary: macro metrics under the scorer's names, plus pooled ones."""
        pooled = self.pooled
        summary = {
            **macro_average(self.per_image),
            "n_images": len(self.ids),
            "pooled": scores(pooled),
            "confusion": pooled.as_dict(),
        }
        if self.calibration is not None and self.calibration.n_pixels:
            summary["calibration"] = self.calibration.summary(self.temperature)
        if self.empty_truth:
            summary["empty_truth"] = self.empty_truth
        return summary

    @property
    def empty_truth(self) -> list[str]:
        """Ids whose expert mask outlines no lesion (every ISIC mask outlines one, so an empty
        mask is often a wrong or blank file); each scores Dice 0 unless its prediction is empty too."""
        return [i for i, c in zip(self.ids, self.confusions) if c.tp + c.fn == 0]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0
