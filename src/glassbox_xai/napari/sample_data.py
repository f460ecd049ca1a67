"""Sample data for napari's File > Open Sample menu."""

from __future__ import annotations

from ..data.synthetic import synthetic_lesion as _make


def synthetic_lesion() -> list[tuple]:
    """A generated (not real) dermoscopy-like image with its mask as a ground-truth layer."""
    image, mask = _make()
    return [
        (image, {"name": "synthetic lesion (generated, not real)", "rgb": True}, "image"),
        (mask.astype("uint8"), {"name": "synthetic lesion ground truth", "opacity": 0.4}, "labels"),
    ]
