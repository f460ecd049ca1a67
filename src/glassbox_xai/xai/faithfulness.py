"""Faithfulness measures, so a telling map can be told from a pretty one.

* Deletion and insertion curves with ROAD-style removal (Rong et al. 2022, "remove
  and debias"): removed pixels are filled by noisy linear imputation, each the
  mean of its eight neighbours (edge neighbours weigh 1/6, corner ones 1/12) solved
  as one sparse linear system, plus Gaussian noise (sigma 0.01), so a removed
  lesion is painted over with the skin around it and its shape does not leak
  through. Deletion removes the most relevant pixels first (MoRF; a faithful map
  drops the target's probability fast: low area); insertion keeps the most relevant
  pixels and imputes the rest (the LeRF curve read backwards: high area). Pixels of
  equal attribution are ordered by one fixed random permutation, the same one that
  gives the *random* ordering, so a constant map scores exactly the random baseline.
* Attribution mass inside the ground-truth mask.
* Model randomisation (Adebayo et al. 2018): the map of the same method on a model
  of the same architecture with fresh random weights must differ; the check
  reports the Spearman rank correlation of the two maps and fails above a bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .base import Explainer
from .targets import TargetScore

NOISE = 0.01
_OFFSETS = [(dy, dx, 1 / 6 if dy == 0 or dx == 0 else 1 / 12) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


@dataclass
class Curves:
    """Target probability at each removed fraction, for the map and (optionally) a random order."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray | None = None
    random_insertion: np.ndarray | None = None

    @property
    def deletion_auc(self) -> float:
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        return float(np.trapezoid(self.insertion, self.fractions))

    @property
    def random_deletion_auc(self) -> float:
        return float(np.trapezoid(self.random_deletion, self.fractions))

    @property
    def random_insertion_auc(self) -> float:
        return float(np.trapezoid(self.random_insertion, self.fractions))


def linear_impute(image: np.ndarray, removed: np.ndarray, noise: float = NOISE, seed: int = 0) -> np.ndarray:
    """``image`` (S, S, C) with the ``removed`` pixels replaced by the neighbour-mean solution
    plus N(0, ``noise``) noise; all pixels removed gives the image's mean colour plus noise."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    out = image.astype(np.float64).copy()
    jitter = np.random.default_rng(seed).normal(0.0, noise, image.shape)
    if removed.all():
        out[:] = image.reshape(-1, image.shape[-1]).mean(axis=0)
        return (out + jitter).astype(np.float32)
    if not removed.any():
        return image.astype(np.float32)
    rows, cols = np.nonzero(removed)
    index = np.full(removed.shape, -1, np.int64)
    index[rows, cols] = np.arange(len(rows))
    diagonal = np.zeros(len(rows))
    rhs = np.zeros((len(rows), image.shape[-1]))
    a_rows, a_cols, a_vals = [], [], []
    for dy, dx, w in _OFFSETS:
        ny, nx = rows + dy, cols + dx
        inside = (ny >= 0) & (ny < removed.shape[0]) & (nx >= 0) & (nx < removed.shape[1])
        i, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        diagonal[i] += w
        unknown = removed[ny, nx]
        a_rows.append(i[unknown]), a_cols.append(index[ny[unknown], nx[unknown]]), a_vals.append(np.full(unknown.sum(), -w))
        np.add.at(rhs, i[~unknown], w * out[ny[~unknown], nx[~unknown]])
    n = len(rows)
    a_rows.append(np.arange(n)), a_cols.append(np.arange(n)), a_vals.append(diagonal)
    matrix = coo_matrix((np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))), shape=(n, n)).tocsc()
    # The matrix is symmetric and diagonally dominant (positive definite once one pixel is known): a
    # minimum-degree ordering of A + A^T without pivoting factors it about 1.5x faster than the default.
    factor = splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    out[rows, cols] = factor.solve(rhs) + jitter[rows, cols]
    return out.astype(np.float32)


def ordering(attribution: np.ndarray, seed: int = 0) -> np.ndarray:
    """Pixel indices (flat) from most to least attributed; ties in one fixed random order."""
    tiebreak = np.random.default_rng(seed).permutation(attribution.size)
    return np.lexsort((tiebreak, -attribution.ravel().astype(np.float64)))


def _curve_inputs(x: np.ndarray, order: np.ndarray, fractions: np.ndarray, seed: int) -> np.ndarray:
    """Deletion inputs (the most relevant fraction removed), then insertion inputs (only the most relevant fraction kept)."""
    size = x.shape[1] * x.shape[2]
    images = []
    for insertion in (False, True):
        for f in fractions:
            count = round(f * size)
            removed = np.zeros(size, bool)
            removed[order[:count] if not insertion else order[count:]] = True
            images.append(linear_impute(x[0], removed.reshape(x.shape[1:3]), seed=seed))
    return np.stack(images)


def deletion_insertion(explainer: Explainer, x: np.ndarray, attribution: np.ndarray, target: TargetScore, steps: int = 10,
                       batch: int = 16, seed: int = 0, with_random: bool = False) -> Curves:
    """ROAD deletion and insertion curves of the target probability for a (1, S, S, C) input
    and an (S, S) attribution at model resolution; ``with_random`` adds a random ordering."""
    if attribution.shape != x.shape[1:3]:
        raise ValueError(f"attribution shape {attribution.shape} must be the model input's {x.shape[1:3]}")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    orders = [ordering(attribution, seed)] + ([ordering(np.zeros_like(attribution), seed)] if with_random else [])
    inputs = np.concatenate([_curve_inputs(x, order, fractions, seed) for order in orders])
    scores = explainer.scores(inputs, target, "sigmoid", batch=batch)
    parts = [scores[i * (steps + 1) : (i + 1) * (steps + 1)] for i in range(len(scores) // (steps + 1))]
    return Curves(fractions, parts[0], parts[1], *((parts[2], parts[3]) if with_random else ()))


def faithfulness_numbers(curves: Curves, min_range: float = 0.05) -> dict:
    """The four areas of a :class:`Curves` with random ordering, and a note when they cannot discriminate."""
    out = {"deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc,
           "random_deletion_auc": curves.random_deletion_auc, "random_insertion_auc": curves.random_insertion_auc,
           "removal": "ROAD noisy linear imputation; target probability"}
    values = np.concatenate([c for c in (curves.deletion, curves.insertion, curves.random_deletion, curves.random_insertion) if c is not None])
    span = float(values.max() - values.min())
    if span < min_range:
        out["degenerate"] = (f"the target probability stays within {values.min():.3f}-{values.max():.3f} whatever is removed: the "
                             f"model keeps its output with the relevant pixels painted over, so these areas cannot tell maps apart")
    return out


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
