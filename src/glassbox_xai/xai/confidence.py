"""Confidence maps: per-pixel confidence from the probabilities, and the superpixel
confidence map of the original GlassBox (SLIC regions coloured by their mean lesion
probability)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import cv2
import numpy as np

from ..jobs import Progress, drive

WORKING_SIDE = 1024


@dataclass
class ConfidenceResult:
    """``confidence``: |2p - 1| per pixel (0 = undecided, 1 = certain); ``superpixels``:
    mean lesion probability of each SLIC region; ``labels``: the region of each pixel.
    All at native resolution."""

    confidence: np.ndarray
    superpixels: np.ndarray
    labels: np.ndarray
    n_regions: int


def pixel_confidence(probabilities: np.ndarray) -> np.ndarray:
    """|2p - 1|: 0 where the model is undecided (p = 0.5), 1 where it is certain."""
    return np.abs(2.0 * np.asarray(probabilities, dtype=np.float32) - 1.0)


def confidence_maps(image: np.ndarray, probabilities: np.ndarray, n_segments: int = 200, compactness: float = 10.0) -> Generator[Progress, None, ConfidenceResult]:
    """Pixel and superpixel confidence of a photograph and its probability map (same size).

    SLIC runs on a copy at most ``WORKING_SIDE`` px a side (seconds even for 7,000 px
    photographs); its regions are resized back with nearest-neighbour interpolation.
    """
    from skimage.segmentation import slic

    if probabilities.shape != image.shape[:2]:
        raise ValueError(f"probabilities {probabilities.shape} and image {image.shape[:2]} must have the same size")
    if n_segments < 2 or compactness <= 0:
        raise ValueError(f"need n_segments >= 2 and compactness > 0, got {n_segments}, {compactness}")
    yield Progress(0, 2, "superpixels")
    rows, cols = image.shape[:2]
    scale = min(1.0, WORKING_SIDE / max(rows, cols))
    small = cv2.resize(image, (max(1, round(cols * scale)), max(1, round(rows * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else image
    labels_small = slic(small, n_segments=n_segments, compactness=compactness, start_label=0)
    labels = cv2.resize(labels_small.astype(np.int32), (cols, rows), interpolation=cv2.INTER_NEAREST)
    yield Progress(1, 2, "region means")
    n = int(labels.max()) + 1
    sums = np.bincount(labels.ravel(), weights=probabilities.ravel().astype(np.float64), minlength=n)
    counts = np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    superpixels = (sums / counts).astype(np.float32)[labels]
    yield Progress(2, 2, "confidence done")
    return ConfidenceResult(pixel_confidence(probabilities), superpixels, labels, n)


def compute_confidence(image: np.ndarray, probabilities: np.ndarray, **kwargs) -> ConfidenceResult:
    """Synchronous :func:`confidence_maps`."""
    return drive(confidence_maps(image, probabilities, **kwargs))
