"""Edge-aware refinement of a probability map with the photograph as its guide.

The network sees a 128-px copy of the photograph; bilinear resizing brings its map back
to the photograph's size as a smooth surface that ignores the photograph's own edges.
The guided filter (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013; the fast,
subsampled form of He and Sun 2015) fits, in every window, the probability as a linear
function of the photograph's intensity: where the photograph has an edge, the map's
transition snaps to it; where it has none, the fit is flat and the filter is a plain box
mean, which leaves a straight boundary where it was.

Written with OpenCV box filters (``cv2.ximgproc.guidedFilter`` needs the contrib build,
which replaces the ``opencv-python-headless`` wheel the package depends on; this form is
about 30 lines, and a test compares it with the filter's definition).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class GuidedRefinement:
    """Settings of the guided refinement.

    Attributes:
        radius_model_px: window radius in model pixels (one model pixel spans
            ``photo_size / input_size`` photograph pixels), so the window covers the
            same part of the lesion at any resolution.
        eps: regularisation of the local linear fit, in (intensity in [0, 1])^2: an
            edge whose local variance is well above ``eps`` is followed, fainter ones
            are smoothed over.
        work_px: the coefficients are computed on a copy whose longer side is at most
            this many pixels (the fast guided filter), then upsampled bilinearly.
    """

    radius_model_px: float = 1.5
    eps: float = 1e-3
    work_px: int = 1024

    def __post_init__(self) -> None:
        if not (self.radius_model_px > 0 and self.eps > 0 and self.work_px >= 64):
            raise ValueError(f"guided refinement: radius_model_px and eps must be > 0 and work_px >= 64, got {self}")

    def apply(self, probabilities: np.ndarray, image: np.ndarray, input_size: int) -> np.ndarray:
        """The refined probability map, same shape as ``probabilities``, values in [0, 1]."""
        return guided_refine(probabilities, image, input_size, self)


def guided_refine(probabilities: np.ndarray, image: np.ndarray, input_size: int, settings: GuidedRefinement = GuidedRefinement()) -> np.ndarray:
    """Refine a native-resolution probability map with the (H, W, 3) uint8 photograph."""
    prob = np.asarray(probabilities, dtype=np.float32)
    if image.shape[:2] != prob.shape or prob.ndim != 2:
        raise ValueError(f"guided refinement: map {prob.shape} and photograph {image.shape} differ in size")
    rows, cols = prob.shape
    if min(rows, cols) < 2:
        return prob.copy()
    scale = min(1.0, settings.work_px / max(rows, cols))
    small = (max(2, round(cols * scale)), max(2, round(rows * scale)))
    guide = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    guide_small = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
    prob_small = cv2.resize(prob, small, interpolation=cv2.INTER_AREA)
    model_px = max(small) / float(input_size)
    radius = max(1, int(round(settings.radius_model_px * model_px)))
    a, b = _coefficients(guide_small, prob_small, radius, settings.eps)
    a = cv2.resize(a, (cols, rows), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, (cols, rows), interpolation=cv2.INTER_LINEAR)
    return np.clip(a * guide + b, 0.0, 1.0)


def _coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged coefficients (a, b) of the guided filter q = a * guide + b."""
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(guide), mean(src)
    var_i = mean(guide * guide) - mean_i * mean_i
    cov_ip = mean(guide * src) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return mean(a), mean(b)
