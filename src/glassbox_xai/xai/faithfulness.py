"""Faithfulness measures, so a telling map can be told from a pretty one.

* Deletion and insertion curves (Petsiuk et al. 2018): the target's mean lesion
  probability as the most-attributed pixels are replaced by a baseline (deletion)
  or revealed on top of it (insertion); all curve points go through the model in
  batches. A faithful map gives a low deletion area and a high insertion area.
* Attribution mass inside the ground-truth mask.
* Model randomisation (Adebayo et al. 2018): the map of the same method on a model
  of the same architecture with fresh random weights must differ; the check
  reports the Spearman rank correlation of the two maps and fails above a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .base import Explainer, Target


@dataclass
class Curves:
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> float:
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        return float(np.trapezoid(self.insertion, self.fractions))


def deletion_insertion(explainer: Explainer, x: np.ndarray, attribution: np.ndarray, target: Target, steps: int = 20, batch: int = 16) -> Curves:
    """Curves for a (1, S, S, 3) input and an (S, S) attribution at model resolution.

    The baseline is the input blurred (sigma S/16), so deleted pixels carry no
    lesion detail without the out-of-distribution black of a zero image.
    """
    if attribution.shape != x.shape[1:3]:
        raise ValueError(f"attribution shape {attribution.shape} must be the model input's {x.shape[1:3]}")
    size = x.shape[1]
    baseline = cv2.GaussianBlur(x[0], (0, 0), size / 16)
    ranks = np.empty(size * size, dtype=np.int64)
    ranks[np.argsort(-attribution.ravel(), kind="stable")] = np.arange(size * size)
    ranks = ranks.reshape(size, size)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    revealed = np.stack([(ranks < round(f * size * size))[..., None] for f in fractions]).astype(np.float32)
    deleted = revealed * baseline + (1 - revealed) * x[0]
    inserted = revealed * x[0] + (1 - revealed) * baseline
    scores = explainer.scores(np.concatenate([deleted, inserted]), target, "sigmoid", batch=batch)
    return Curves(fractions, scores[: steps + 1], scores[steps + 1 :])


def mass_inside(attribution: np.ndarray, truth: np.ndarray) -> float:
    """Share of absolute attribution inside the ground-truth mask (same shape)."""
    if attribution.shape != truth.shape:
        raise ValueError(f"attribution {attribution.shape} and truth {truth.shape} must have the same shape")
    total = float(np.abs(attribution).sum())
    return float(np.abs(attribution[truth.astype(bool)]).sum()) / total if total > 0 else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (0 when either is constant)."""
    ra = np.argsort(np.argsort(a.ravel(), kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b.ravel(), kind="stable"), kind="stable").astype(np.float64)
    if a.ravel().std() == 0 or b.ravel().std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class RandomisationCheck:
    spearman: float
    bound: float

    @property
    def passed(self) -> bool:
        """True when the map changed enough with random weights (|rho| below the bound)."""
        return abs(self.spearman) < self.bound


def randomisation_check(method: Callable[[object], np.ndarray], model, random_model, bound: float = 0.5) -> RandomisationCheck:
    """Compare ``method(model)`` with ``method(random_model)`` (maps of one image).

    ``random_model`` has the same architecture with freshly initialised weights
    (for our models: ``build_attention_unet(config)``). A map that does not depend
    on the weights (an edge detector, say) correlates fully and fails.
    """
    return RandomisationCheck(spearman(method(model), method(random_model)), bound)
