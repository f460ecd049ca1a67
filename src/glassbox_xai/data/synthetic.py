"""A synthetic dermoscopy-like photograph with its mask, made in code.

It is NOT real data: it exists for the napari sample menu and for unit tests that
need an image of a known shape. Accuracy claims come from ISIC images only.
"""

from __future__ import annotations

import numpy as np


def synthetic_lesion(shape: tuple[int, int] = (384, 512), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W, 3) uint8 skin-like image with a brown irregular lesion, and its bool mask."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * rng.uniform(0.4, 0.6), cols * rng.uniform(0.4, 0.6)
    angle = np.arctan2(y - cy, x - cx)
    radius = 0.28 * min(rows, cols) * (1 + sum(rng.uniform(0.03, 0.1) * np.sin(k * angle + rng.uniform(0, 6.3)) for k in (2, 3, 5)))
    distance = np.hypot(y - cy, x - cx)
    mask = distance < radius
    skin = np.array([225, 180, 160], np.float32)
    lesion = np.array([120, 75, 55], np.float32)
    edge = np.clip((radius - distance) / (0.08 * radius), 0, 1)[..., None]
    image = skin * (1 - edge) + lesion * edge
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    vignette = np.clip(1.25 - np.hypot((y - rows / 2) / rows, (x - cols / 2) / cols) * 1.3, 0.35, 1)[..., None]
    return np.clip(image * vignette, 0, 255).astype(np.uint8), mask
