"""What to review first: images ordered by model uncertainty.

Two scores per image, both in [0, 1] (higher = less sure):

* boundary uncertainty: the mean of ``1 - |2p - 1|`` over a band around the
  predicted boundary (the confidence map where it matters);
* Monte Carlo dropout disagreement (Gal & Ghahramani 2016; MONAI Label's
  epistemic strategy): the model's spatial dropout kept on for several passes,
  the mean per-pixel standard deviation of the probabilities over the band.
  Batch normalisation stays in inference mode during these passes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generator, Iterable

import cv2
import numpy as np

from ..data.io import read_image
from ..data.layout import Sample
from ..data.resize import to_model_input
from ..inference import Progress, Segmenter, sigmoid


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the mask's boundary (the whole image when there is none)."""
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    m = mask.astype(np.uint8)
    band = (cv2.dilate(m, kernel) - cv2.erode(m, kernel)) > 0
    return band if band.any() else np.ones_like(mask, dtype=bool)


def boundary_uncertainty(probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """Mean uncertainty ``1 - |2p - 1|`` in a band 3% of the image size around the boundary."""
    width = max(1, round(0.03 * min(probabilities.shape)))
    band = boundary_band(probabilities > threshold, width)
    return float(np.mean(1.0 - np.abs(2.0 * probabilities[band] - 1.0)))


@contextmanager
def dropout_only(model):
    """Within the block, ``model(x, training=True)`` applies dropout while every batch
    normalisation layer keeps its moving statistics (Keras runs a non-trainable
    BatchNormalization in inference mode)."""
    from ..model.attention_unet import batchnorm_layers

    norms = batchnorm_layers(model)
    saved = [layer.trainable for layer in norms]
    for layer in norms:
        layer.trainable = False
    try:
        yield model
    finally:
        for layer, flag in zip(norms, saved):
            layer.trainable = flag


def mc_dropout_disagreement(model, x: np.ndarray, passes: int = 8, threshold: float = 0.5) -> float:
    """Mean standard deviation of the probabilities over ``passes`` dropout passes, in the boundary band."""
    if passes < 2:
        raise ValueError(f"Monte Carlo dropout needs at least 2 passes, got {passes}")
    batch = np.repeat(np.asarray(x, dtype=np.float32), passes, axis=0)
    with dropout_only(model):
        probs = sigmoid(np.asarray(model(batch, training=True))[..., 0])
    mean = probs.mean(axis=0)
    width = max(1, round(0.03 * min(mean.shape)))
    band = boundary_band(mean > threshold, width)
    return float(probs.std(axis=0)[band].mean())


@dataclass(frozen=True)
class Ranked:
    id: str
    boundary: float
    mc_dropout: float

    @property
    def score(self) -> float:
        """The ordering score: the mean of the two, each in [0, 1]."""
        return (self.boundary + self.mc_dropout) / 2


def rank_by_uncertainty(segmenter: Segmenter, samples: Iterable[Sample], passes: int = 8) -> Generator[Progress, None, list[Ranked]]:
    """Score every sample; returns them most uncertain first."""
    samples = list(samples)
    ranked = []
    for n, sample in enumerate(samples):
        yield Progress(n, len(samples), sample.id)
        image = read_image(sample.image)
        prediction = segmenter.predict(image)
        x = to_model_input(image, segmenter.input_size)[None]
        ranked.append(Ranked(sample.id, boundary_uncertainty(prediction.probabilities, segmenter.threshold),
                             mc_dropout_disagreement(segmenter.bundle.model, x, passes, segmenter.threshold)))
    yield Progress(len(samples), len(samples), "ranked")
    return sorted(ranked, key=lambda r: r.score, reverse=True)
