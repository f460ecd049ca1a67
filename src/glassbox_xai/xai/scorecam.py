"""Score-CAM (Wang et al. 2020) of one layer, without gradients: each channel's weight is
the model's target score on the image masked by that channel's activation map,
upsampled to the input and min-max normalised to [0, 1].

One forward pass per channel, batched. A channel budget keeps the ``budget``
channels whose activation varies most over space (Faster Score-CAM; tf-keras-vis
``max_N``); with ``compare_full`` the remaining channels are scored too and the
result reports the Pearson correlation of the budgeted map with the full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from ..jobs import Progress, drive
from .base import Explainer, native
from .layer_pass import default_layer, scaled
from .targets import Output, TargetScore


@dataclass
class ScoreCAMResult:
    """``map``: in [0, 1] at native resolution; ``model_map``: the same at layer resolution;
    ``channels``: indices of the scored channels (by falling activation variance);
    ``weights``: their scores; ``agreement``: correlation with the all-channel map
    (1.0 when no channel was left out, None when not measured)."""

    map: np.ndarray
    model_map: np.ndarray
    layer: str
    channels: np.ndarray
    channels_total: int
    weights: np.ndarray
    agreement: float | None
    output: str
    target: str


def top_channels(activation: np.ndarray, budget: int | None) -> np.ndarray:
    """Channel indices of an (h, w, C) activation by falling spatial standard deviation, the first ``budget``."""
    order = np.argsort(-activation.std(axis=(0, 1)), kind="stable")
    return order if budget is None or budget <= 0 or budget >= len(order) else order[:budget]


def channel_masks(activation: np.ndarray, size: int) -> np.ndarray:
    """(C, size, size) masks: each channel upsampled bilinearly, then min-max normalised to [0, 1]."""
    import cv2

    masks = np.stack([cv2.resize(activation[..., k], (size, size), interpolation=cv2.INTER_LINEAR) for k in range(activation.shape[-1])])
    low = masks.min(axis=(1, 2), keepdims=True)
    span = masks.max(axis=(1, 2), keepdims=True) - low
    return ((masks - low) / np.where(span > 0, span, 1.0)).astype(np.float32)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two maps (1.0 when both are the same constant, 0.0 when one is)."""
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _channel_scores(explainer: Explainer, x: np.ndarray, masks: np.ndarray, target: TargetScore, output: Output,
                    batch: int) -> Generator[Progress, None, np.ndarray]:
    """Scores of ``x`` masked by each mask, ``batch`` masked images per model call."""
    scores = []
    for start in range(0, len(masks), batch):
        part = x[0][None] * masks[start : start + batch, ..., None]
        scores.append(explainer.scores(part, target, output, batch=batch))
        yield Progress(start + len(part), len(masks), "Score-CAM: masked images")
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def scorecam(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, layer: str | None = None, budget: int | None = 32,
             output: Output = "sigmoid", batch: int = 16, compare_full: bool = False) -> Generator[Progress, None, ScoreCAMResult]:
    """Score-CAM of ``layer`` (default: :func:`~.layer_pass.default_layer`) on the target's
    ``output`` score (default the probability), scoring at most ``budget`` channels."""
    import keras

    x = explainer.prepare(image)
    tgt = explainer.target(image.shape[:2], x, target, truth)
    layer = layer or default_layer(explainer.model)
    probe = keras.Model(explainer.model.input, explainer.model.get_layer(layer).output)
    activation = np.asarray(probe(x, training=False), np.float32)[0]
    order = top_channels(activation, None)
    chosen = top_channels(activation, budget)
    scored = order if compare_full else chosen
    masks = channel_masks(activation[..., scored], explainer.size)
    weights = yield from _channel_scores(explainer, x, masks, tgt, output, batch)
    used = weights[: len(chosen)]
    raw = np.maximum(np.tensordot(activation[..., chosen], used, axes=([-1], [0])), 0.0)
    agreement = 1.0 if len(chosen) == len(order) else None
    if compare_full and agreement is None:
        full = np.maximum(np.tensordot(activation[..., order], weights, axes=([-1], [0])), 0.0)
        agreement = correlation(raw, full)
    model_map = scaled(raw.astype(np.float32))
    return ScoreCAMResult(native(model_map, image.shape[:2]), model_map, layer, chosen, activation.shape[-1], used.astype(np.float32),
                          agreement, output, tgt.name)


def compute_scorecam(explainer: Explainer, image: np.ndarray, **kwargs) -> ScoreCAMResult:
    """Synchronous :func:`scorecam`."""
    return drive(scorecam(explainer, image, **kwargs))
