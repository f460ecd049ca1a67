"""Integrated gradients (Sundararajan et al. 2017) on the logits, with Gauss-Legendre
quadrature along the straight path from a baseline, the path points batched through
the model, and the completeness check reported with every map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import cv2
import numpy as np

from ..jobs import Progress, drive
from .base import Explainer, native

BASELINES = ("black", "blur")


@dataclass
class IGResult:
    """``map``: attributions summed over colour channels, at native resolution;
    ``attributions``: (S, S, 3) at model resolution, whose sum should equal
    ``score - baseline_score``; ``completeness_error``: |sum - difference| / |difference|."""

    map: np.ndarray
    attributions: np.ndarray
    score: float
    baseline_score: float
    completeness_error: float
    steps: int
    baseline: str
    target: str


def make_baseline(x: np.ndarray, kind: str | np.ndarray) -> tuple[np.ndarray, str]:
    """The baseline input for a (1, S, S, 3) model input: black, blurred, or given."""
    if isinstance(kind, np.ndarray):
        if kind.shape != x.shape[1:]:
            raise ValueError(f"a custom baseline must have the model input's shape {x.shape[1:]}, got {kind.shape}")
        return kind[None].astype(np.float32), "custom"
    if kind == "black":
        return np.zeros_like(x), kind
    if kind == "blur":
        sigma = x.shape[1] / 16
        return cv2.GaussianBlur(x[0], (0, 0), sigma)[None], kind
    raise ValueError(f"unknown baseline {kind!r}; expected one of {BASELINES} or an array")


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes in (0, 1) and weights summing to 1 of the ``steps``-point Gauss-Legendre rule."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


def integrated_gradients(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, baseline: str | np.ndarray = "black",
                         steps: int = 32, batch: int = 16) -> Generator[Progress, None, IGResult]:
    """Integrated gradients of the target's mean logit, ``steps`` quadrature points in calls of ``batch``."""
    x = explainer.prepare(image)
    tgt = explainer.target(image.shape[:2], x, target, truth)
    base, base_name = make_baseline(x, baseline)
    alphas, weights = gauss_legendre(steps)
    total = np.zeros(x.shape[1:], dtype=np.float64)
    yield Progress(0, steps, "integrated gradients")
    for start in range(0, steps, batch):
        a = alphas[start : start + batch, None, None, None].astype(np.float32)
        _, grads = explainer.scores_and_gradients(base + a * (x - base), tgt, "logits")
        total += np.tensordot(weights[start : start + batch], grads, axes=1)
        yield Progress(min(start + batch, steps), steps, "integrated gradients")
    attributions = (x[0] - base[0]) * total
    end_scores = explainer.scores(np.concatenate([x, base]), tgt, "logits")
    difference = float(end_scores[0] - end_scores[1])
    error = abs(float(attributions.sum()) - difference) / max(abs(difference), 1e-6)
    return IGResult(native(attributions.sum(axis=-1).astype(np.float32), image.shape[:2]), attributions.astype(np.float32),
                    float(end_scores[0]), float(end_scores[1]), error, steps, base_name, tgt.name)


def compute_integrated_gradients(explainer: Explainer, image: np.ndarray, **kwargs) -> IGResult:
    """Synchronous :func:`integrated_gradients`."""
    return drive(integrated_gradients(explainer, image, **kwargs))
