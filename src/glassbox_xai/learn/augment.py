"""The image pipeline: sixteen techniques, each toggled and bounded from a config.

It serves two uses: random augmentation while training (:func:`build_augmentation`,
image and mask move together), and fixed, deterministic preprocessing before
segmentation (:func:`build_preprocessing`, photometric techniques only, at one
value each, so the predicted mask stays aligned with the photograph).

Albumentations supplies every technique it has; dilation, erosion and edge
detection of the *image* are written here (albumentations' ``Morphological``
also changes the mask, which would move a dark lesion's boundary the wrong way).

A config maps technique names to ``{enabled, p, min, max}`` (``value`` for
preprocessing); unspecified fields take the defaults in :data:`TECHNIQUES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import albumentations as A
import cv2
import numpy as np

from .artefacts import PaintArtefacts


class AugmentConfigError(ValueError):
    """A pipeline config names an unknown technique or a value out of bounds."""


@dataclass(frozen=True)
class Technique:
    """One technique: its default and allowed range, and how to build it."""

    low: float
    high: float
    limits: tuple[float, float]
    build: Callable[[float, float, float], A.BasicTransform]
    geometric: bool = False
    train_only: bool = False
    unit: str = ""


class _ImageMorphology(A.ImageOnlyTransform):
    """Grey-level dilation or erosion of the image with a square kernel (mask untouched)."""

    def __init__(self, operation: str, size: tuple[int, int], p: float = 0.5):
        super().__init__(p=p)
        self.operation, self.size = operation, size

    def get_params(self) -> dict[str, Any]:
        return {"k": int(self.py_random.randint(int(self.size[0]), int(self.size[1])))}

    def apply(self, img: np.ndarray, k: int = 1, **params) -> np.ndarray:
        if k <= 1:
            return img
        kernel = np.ones((k, k), np.uint8)
        return cv2.dilate(img, kernel) if self.operation == "dilation" else cv2.erode(img, kernel)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("operation", "size")


class _EdgeBlend(A.ImageOnlyTransform):
    """Blend the image's Sobel edge magnitude into it, with a strength in [low, high]."""

    def __init__(self, strength: tuple[float, float], p: float = 0.5):
        super().__init__(p=p)
        self.strength = strength

    def get_params(self) -> dict[str, Any]:
        return {"alpha": self.py_random.uniform(*self.strength)}

    def apply(self, img: np.ndarray, alpha: float = 0.2, **params) -> np.ndarray:
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        edges = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        edges = np.clip(edges / max(float(edges.max()), 1e-6) * 255.0, 0, 255)[..., None]
        return np.clip(img.astype(np.float32) * (1 - alpha) + edges * alpha, 0, 255).astype(np.uint8)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("strength",)


def _odd(value: float) -> int:
    return int(value) | 1


TECHNIQUES: dict[str, Technique] = {
    # first of the photometric techniques, so the colour jitter after it varies the painted colours too
    "artefacts": Technique(1, 2, (1, 6), lambda lo, hi, p: PaintArtefacts((lo, hi), p=p), train_only=True, unit="artefacts painted outside the lesion"),
    "brightness": Technique(-0.15, 0.15, (-0.5, 0.5), lambda lo, hi, p: A.RandomBrightnessContrast((lo, hi), (0, 0), p=p)),
    "contrast": Technique(-0.15, 0.15, (-0.5, 0.5), lambda lo, hi, p: A.RandomBrightnessContrast((0, 0), (lo, hi), p=p)),
    "saturation": Technique(-20, 20, (-100, 100), lambda lo, hi, p: A.HueSaturationValue((0, 0), (lo, hi), (0, 0), p=p)),
    "hue": Technique(-8, 8, (-90, 90), lambda lo, hi, p: A.HueSaturationValue((lo, hi), (0, 0), (0, 0), p=p), unit="degrees/2"),
    "gamma": Technique(80, 120, (30, 300), lambda lo, hi, p: A.RandomGamma((lo, hi), p=p), unit="percent"),
    "clahe": Technique(1.0, 3.0, (1.0, 10.0), lambda lo, hi, p: A.CLAHE((lo, hi), p=p), unit="clip limit"),
    "gaussian_blur": Technique(3, 5, (3, 31), lambda lo, hi, p: A.GaussianBlur((_odd(lo), _odd(hi)), p=p), unit="kernel px"),
    "gaussian_noise": Technique(0.01, 0.05, (0.0, 0.3), lambda lo, hi, p: A.GaussNoise(std_range=(lo, hi), p=p), train_only=True, unit="std, fraction of 255"),
    "dilation": Technique(2, 3, (1, 15), lambda lo, hi, p: _ImageMorphology("dilation", (lo, hi), p=p), unit="kernel px"),
    "erosion": Technique(2, 3, (1, 15), lambda lo, hi, p: _ImageMorphology("erosion", (lo, hi), p=p), unit="kernel px"),
    "edge_detection": Technique(0.1, 0.3, (0.0, 1.0), lambda lo, hi, p: _EdgeBlend((lo, hi), p=p), unit="blend"),
    "horizontal_flip": Technique(0, 0, (0, 0), lambda lo, hi, p: A.HorizontalFlip(p=p), geometric=True),
    "vertical_flip": Technique(0, 0, (0, 0), lambda lo, hi, p: A.VerticalFlip(p=p), geometric=True),
    "rotation": Technique(-180, 180, (-180, 180), lambda lo, hi, p: A.Affine(rotate=(lo, hi), border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=p), geometric=True, unit="degrees"),
    "zoom": Technique(0.9, 1.2, (0.5, 2.0), lambda lo, hi, p: A.Affine(scale=(lo, hi), border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=p), geometric=True, unit="scale"),
}

GEOMETRIC_ORDER = ("horizontal_flip", "vertical_flip", "rotation", "zoom")


def resolve(config: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    """Validate a pipeline config and fill in defaults; only enabled techniques are returned."""
    resolved: dict[str, dict[str, float]] = {}
    for name, entry in (config or {}).items():
        if name not in TECHNIQUES:
            raise AugmentConfigError(f"unknown technique {name!r}; expected one of {sorted(TECHNIQUES)}")
        entry = {"enabled": True, **(entry or {})} if isinstance(entry, dict) or entry is None else {"enabled": bool(entry)}
        unknown = set(entry) - {"enabled", "p", "min", "max", "value"}
        if unknown:
            raise AugmentConfigError(f"{name}: unknown keys {sorted(unknown)}; expected enabled, p, min, max, value")
        if not entry["enabled"]:
            continue
        tech = TECHNIQUES[name]
        low, high = float(entry.get("min", tech.low)), float(entry.get("max", tech.high))
        p = float(entry.get("p", 0.5))
        value = float(entry.get("value", (low + high) / 2))
        lim_lo, lim_hi = tech.limits
        if not lim_lo <= low <= high <= lim_hi:
            raise AugmentConfigError(f"{name}: need {lim_lo} <= min <= max <= {lim_hi} ({tech.unit or 'value'}), got min={low}, max={high}")
        if not lim_lo <= value <= lim_hi:
            raise AugmentConfigError(f"{name}: value {value} is outside {lim_lo}..{lim_hi} ({tech.unit or 'value'})")
        if not 0.0 <= p <= 1.0:
            raise AugmentConfigError(f"{name}: p must be in [0, 1], got {p}")
        resolved[name] = {"p": p, "min": low, "max": high, "value": value}
    return resolved


def build_augmentation(config: dict[str, Any] | None, seed: int | None = None) -> A.Compose:
    """Random training augmentation: geometric techniques first (image and mask
    together), then photometric ones (image only)."""
    resolved = resolve(config)
    names = [n for n in GEOMETRIC_ORDER if n in resolved] + [n for n in TECHNIQUES if n in resolved and n not in GEOMETRIC_ORDER]
    transforms = [TECHNIQUES[n].build(resolved[n]["min"], resolved[n]["max"], resolved[n]["p"]) for n in names]
    return A.Compose(transforms, seed=seed)


def build_preprocessing(config: dict[str, Any] | None) -> A.Compose:
    """Deterministic preprocessing: each enabled photometric technique at its ``value``.

    Geometric and random-only techniques are refused: they would move the
    photograph away from the mask drawn on it.
    """
    resolved = resolve(config)
    refused = [n for n in resolved if TECHNIQUES[n].geometric or TECHNIQUES[n].train_only]
    if refused:
        raise AugmentConfigError(f"{', '.join(refused)} cannot be used for preprocessing (geometric or random); use them for training only")
    transforms = [_fixed(n, resolved[n]["value"]) for n in TECHNIQUES if n in resolved]
    return A.Compose(transforms, seed=0)


def _fixed(name: str, value: float) -> A.BasicTransform:
    """One technique at one value. Gaussian blur gets OpenCV's sigma for its kernel
    size: albumentations would otherwise draw sigma at random on every call."""
    if name == "gaussian_blur":
        k = _odd(value)
        sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
        return A.GaussianBlur((k, k), sigma_limit=(sigma, sigma), p=1.0)
    return TECHNIQUES[name].build(value, value, 1.0)


def alignment_sheet(image: np.ndarray, mask: np.ndarray, pipeline: A.Compose, path: str | Path, n: int = 4) -> Path:
    """Render image, mask outline and ``n`` transformed pairs (outline drawn from the
    transformed mask) as a PNG, to check by eye that masks follow their images."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n + 1, figsize=(3 * (n + 1), 3.2), dpi=100)
    panels = [(image, mask, "original")]
    for i in range(n):
        out = pipeline(image=image, mask=mask.astype(np.uint8))
        panels.append((out["image"], out["mask"] > 0, f"augmented {i + 1}"))
    for ax, (img, msk, title) in zip(axes, panels):
        ax.imshow(img)
        ax.contour(msk, levels=[0.5], colors="lime", linewidths=1.2)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    from ..figures import save_figure

    return save_figure(fig, path)
