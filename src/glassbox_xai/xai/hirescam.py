"""HiRes-CAM (Draelos & Carin 2020) for every convolutional layer: the gradient times the
activation, element-wise, summed over channels, with no averaging of the gradient.

It comes from the same single forward and backward pass as Grad-CAM
(:func:`~.layer_pass.layer_pass`). Because the gradient keeps its spatial layout, the
map follows the target: at ``output_logits`` it is the logit times the region's weight
at each pixel, so a drawn region shows up where Grad-CAM shows the whole prediction.
For a target whose score is a sum over the layer's outputs it is exact: the map sums
to the score's first-order part (gradient . activation) before the ReLU.
"""

from __future__ import annotations

from typing import Generator

import numpy as np

from ..jobs import Progress, drive
from .base import Explainer
from .gradcam import GradCAMResult, layer_cam_job
from .layer_pass import LayerPass


def hires_cam(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """HiRes-CAM of one layer: ReLU of sum over channels of gradient x activation."""
    return np.maximum((activation * gradient).sum(axis=-1), 0.0).astype(np.float32)


def hirescam(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, layers: list[str] | None = None,
             recorded: LayerPass | None = None) -> Generator[Progress, None, GradCAMResult]:
    """HiRes-CAM of every convolution (or of ``layers``), each map divided by its maximum;
    ``recorded`` reuses a :func:`~.layer_pass.layer_pass` of the same image and target."""
    return (yield from layer_cam_job("HiRes-CAM", hires_cam, explainer, image, target, truth, layers, recorded))


def compute_hirescam(explainer: Explainer, image: np.ndarray, **kwargs) -> GradCAMResult:
    """Synchronous :func:`hirescam`."""
    return drive(hirescam(explainer, image, **kwargs))
