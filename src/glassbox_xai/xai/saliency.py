"""Saliency: the gradient of the target score with respect to the input pixels
(Simonyan et al. 2014), on the raw logits or on the sigmoid output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from ..jobs import Progress, drive
from .base import Explainer, Output, native


@dataclass
class SaliencyResult:
    """``map``: max over colour channels of |gradient|, at native resolution;
    ``gradient``: the signed (S, S, 3) gradient at model resolution; ``score``: S(x)."""

    map: np.ndarray
    gradient: np.ndarray
    score: float
    output: str
    target: str


def saliency(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, output: Output = "logits") -> Generator[Progress, None, SaliencyResult]:
    """Saliency of ``image`` for the target, on ``output`` ("logits" or "sigmoid")."""
    yield Progress(0, 1, f"saliency ({output})")
    x = explainer.prepare(image)
    tgt = explainer.target(image.shape[:2], x, target, truth)
    scores, grads = explainer.scores_and_gradients(x, tgt, output)
    yield Progress(1, 1, f"saliency ({output})")
    return SaliencyResult(native(np.abs(grads[0]).max(axis=-1), image.shape[:2]), grads[0], float(scores[0]), output, tgt.name)


def compute_saliency(explainer: Explainer, image: np.ndarray, **kwargs) -> SaliencyResult:
    """Synchronous :func:`saliency`."""
    return drive(saliency(explainer, image, **kwargs))
