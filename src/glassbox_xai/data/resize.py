"""Resizing photographs into the model's square input and maps back to native size."""

from __future__ import annotations

import cv2
import numpy as np


def to_model_input(image: np.ndarray, size: int) -> np.ndarray:
    """An (H, W, 3) uint8 photograph as a (size, size, 3) float32 array in [0, 1].

    The aspect ratio is not kept, matching the ISIC 512x512 training copies;
    shrinking uses area averaging (no aliasing), enlarging bilinear interpolation.
    """
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    shrinking = image.shape[0] * image.shape[1] > size * size
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized.astype(np.float32) / 255.0


def to_native(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D float map from model resolution to ``shape`` (rows, columns), bilinear.

    The result always has exactly ``shape``, whatever the photograph's size.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {values.shape}")
    rows, cols = int(shape[0]), int(shape[1])
    if values.shape == (rows, cols):
        return values.copy()
    return cv2.resize(values, (cols, rows), interpolation=cv2.INTER_LINEAR)
