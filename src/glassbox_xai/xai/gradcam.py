"""Grad-CAM (Selvaraju et al. 2017) for every convolutional layer, grouped by stage,
from ONE forward and ONE backward pass, plus the attention gates' own coefficient maps.

Grad-CAM averages each channel's gradient over space before weighting the channel,
so for a single-channel layer (``output_logits``) the map is that channel's
activation, rectified and scaled, WHATEVER the target region: the region only sets
the positive scale, which the division by the maximum removes. In decoder layers
the averaged gradients change the channel weights only a little. This is what the
method computes, not a bug; :mod:`.hirescam` keeps the spatial gradient and follows
the region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from ..jobs import Progress, drive
from .base import Explainer, native
from .layer_pass import LayerPass, layer_pass, scaled


@dataclass
class GradCAMResult:
    """``maps``: layer name -> map in [0, 1] (each divided by its own maximum) at
    native resolution; ``stages``: stage -> layer names in network order;
    ``attention``: ``attention{i}`` -> gate coefficients in [0, 1] at native resolution;
    ``model_maps``: the same maps at layer resolution, before resizing."""

    maps: dict[str, np.ndarray]
    stages: dict[str, list[str]]
    attention: dict[str, np.ndarray]
    score: float
    target: str
    model_maps: dict[str, np.ndarray] | None = None


def cam(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Grad-CAM of one layer: ReLU of the activation channels weighted by their mean gradient."""
    weights = gradient.mean(axis=(0, 1))
    return np.maximum(np.tensordot(activation, weights, axes=([-1], [0])), 0.0).astype(np.float32)


def cam_result(recorded: LayerPass, shape: tuple[int, int], reduce) -> GradCAMResult:
    """Apply ``reduce(activation, gradient)`` to every recorded layer and resize to ``shape``."""
    model_maps = {name: scaled(reduce(recorded.activations[name], recorded.gradients[name])) for name in recorded.activations}
    maps = {name: native(m, shape) for name, m in model_maps.items()}
    attention = {name: native(v, shape) for name, v in recorded.attention.items()}
    return GradCAMResult(maps, recorded.stages, attention, recorded.score, recorded.target, model_maps)


def gradcam(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, layers: list[str] | None = None,
            recorded: LayerPass | None = None) -> Generator[Progress, None, GradCAMResult]:
    """Grad-CAM of every convolution (or of ``layers``) for the target's score on the logits;
    ``recorded`` reuses a :func:`~.layer_pass.layer_pass` of the same image and target."""
    return (yield from layer_cam_job("Grad-CAM", cam, explainer, image, target, truth, layers, recorded))


def layer_cam_job(label: str, reduce, explainer: Explainer, image: np.ndarray, target, truth, layers: list[str] | None,
                  recorded: LayerPass | None) -> Generator[Progress, None, GradCAMResult]:
    """The job shared by the gradient CAMs: one recorded forward and backward pass (or
    ``recorded``), then ``reduce(activation, gradient)`` per layer, at the photograph's size."""
    yield Progress(0, 2, f"{label}: forward and backward pass")
    if recorded is None:
        x = explainer.prepare(image)
        recorded = layer_pass(explainer, x, explainer.target(image.shape[:2], x, target, truth), layers)
    yield Progress(1, 2, f"{label}: maps")
    result = cam_result(recorded, image.shape[:2], reduce)
    yield Progress(2, 2, f"{label}: done")
    return result


def compute_gradcam(explainer: Explainer, image: np.ndarray, **kwargs) -> GradCAMResult:
    """Synchronous :func:`gradcam`."""
    return drive(gradcam(explainer, image, **kwargs))
