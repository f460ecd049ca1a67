"""Grad-CAM++ (Chattopadhyay et al. 2018) for every convolutional layer, from the same
single forward and backward pass as Grad-CAM.

With the exponential of the score as in the paper, the pixel weights are
``alpha = g^2 / (2 g^2 + sum(A) g^3)`` (the exponential cancels) and each channel's
weight is ``sum(alpha * ReLU(g))``; as in tf-keras-vis ``GradcamPlusPlus``, the alphas
of each channel are first divided by their spatial sum, so the two agree.
"""

from __future__ import annotations

from typing import Generator

import numpy as np

from ..jobs import Progress, drive
from .base import Explainer
from .gradcam import GradCAMResult, layer_cam_job
from .layer_pass import LayerPass


def gradcam_pp(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Grad-CAM++ of one layer from its (h, w, C) activation and gradient."""
    a, g = activation.astype(np.float64), gradient.astype(np.float64)
    g2 = g * g
    denominator = 2.0 * g2 + a.sum(axis=(0, 1)) * g2 * g
    alphas = g2 / np.where(g2 == 0.0, 1.0, denominator)
    norm = alphas.sum(axis=(0, 1))
    alphas = alphas / np.where(norm == 0.0, 1.0, norm)
    weights = (alphas * np.maximum(g, 0.0)).sum(axis=(0, 1))
    return np.maximum(np.tensordot(a, weights, axes=([-1], [0])), 0.0).astype(np.float32)


def gradcam_plus(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, layers: list[str] | None = None,
                 recorded: LayerPass | None = None) -> Generator[Progress, None, GradCAMResult]:
    """Grad-CAM++ of every convolution (or of ``layers``), each map divided by its maximum."""
    return (yield from layer_cam_job("Grad-CAM++", gradcam_pp, explainer, image, target, truth, layers, recorded))


def compute_gradcam_plus(explainer: Explainer, image: np.ndarray, **kwargs) -> GradCAMResult:
    """Synchronous :func:`gradcam_plus`."""
    return drive(gradcam_plus(explainer, image, **kwargs))
