"""Paint the artefacts that cause the model's failures onto training photographs.

The dice model's failures on dev_val (``training/reports/failures/failures.png``) are mostly
a lesion beside something dark, coloured or round that is not skin: purple ink rings
and marks, coloured stickers, air bubbles, dense hair, a dermoscope's dark rim, rulers.
This transform paints such things onto a training photograph *outside* the expert
lesion (hair may cross it, as real hair does), and leaves the mask unchanged, so the
network learns that they are background.

Each call paints ``count`` artefacts of kinds drawn at random; everything is drawn in
the photograph's own pixel size (it works at 128 px and at 512 px alike).
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np

INK = ((112, 58, 150), (80, 60, 160), (60, 40, 110), (40, 40, 40))
STICKER = ((240, 150, 40), (245, 215, 60), (70, 190, 200), (60, 110, 220), (230, 90, 150))
KINDS = ("ink_ring", "ink_marks", "sticker", "bubble", "hair", "rim", "ruler")


class PaintArtefacts(A.ImageOnlyTransform):
    """Paint ``count`` (low, high) artefacts outside the lesion; the mask is not changed."""

    def __init__(self, count: tuple[float, float] = (1, 2), p: float = 0.5):
        super().__init__(p=p)
        self.count = count

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        mask = data.get("mask")
        return {"lesion": None if mask is None else np.asarray(mask) > 0, "seed": self.py_random.randint(0, 2**31 - 1)}

    def apply(self, img: np.ndarray, lesion: np.ndarray | None = None, seed: int = 0, **params) -> np.ndarray:
        rng = np.random.default_rng(seed)
        lesion = np.zeros(img.shape[:2], bool) if lesion is None else lesion
        out = img.copy()
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            out = paint(out, lesion, str(rng.choice(KINDS)), rng)
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("count",)


def paint(image: np.ndarray, lesion: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One artefact of ``kind`` on a copy of the (H, W, 3) uint8 ``image``."""
    h, w = image.shape[:2]
    unit = min(h, w) / 128.0  # sizes below are in pixels of a 128-px photograph
    layer = image.copy()
    centre, extent = _lesion_centre(lesion)
    if kind == "ink_ring":
        radius = extent + rng.uniform(4, 14) * unit
        axes = (int(radius * rng.uniform(0.9, 1.2)), int(radius * rng.uniform(0.9, 1.2)))
        start = rng.uniform(0, 360)
        cv2.ellipse(layer, centre, axes, rng.uniform(0, 180), start, start + rng.uniform(200, 360), _colour(INK, rng), max(1, int(rng.uniform(1, 3) * unit)), cv2.LINE_AA)
    elif kind == "ink_marks":
        for _ in range(int(rng.integers(2, 7))):
            angle = rng.uniform(0, 2 * np.pi)
            r = extent + rng.uniform(3, 20) * unit
            p = (int(centre[0] + r * np.cos(angle)), int(centre[1] + r * np.sin(angle)))
            q = (int(p[0] + rng.uniform(-6, 6) * unit), int(p[1] + rng.uniform(-6, 6) * unit))
            cv2.line(layer, p, q, _colour(INK, rng), max(1, int(rng.uniform(1, 4) * unit)), cv2.LINE_AA)
    elif kind == "sticker":
        radius = int(rng.uniform(8, 30) * unit)
        p = _outside(lesion, radius, rng)
        if p is None:
            return image
        cv2.circle(layer, p, radius, _colour(STICKER, rng), -1, cv2.LINE_AA)
        if rng.random() < 0.4:
            cv2.circle(layer, p, radius // 2, _colour(STICKER, rng), -1, cv2.LINE_AA)
    elif kind == "bubble":
        radius = int(rng.uniform(4, 22) * unit)
        p = _outside(lesion, radius, rng)
        if p is None:
            return image
        cv2.circle(layer, p, radius, (235, 235, 235), max(1, int(unit)), cv2.LINE_AA)
        cv2.circle(layer, (p[0] - radius // 3, p[1] - radius // 3), max(1, radius // 5), (250, 250, 250), -1, cv2.LINE_AA)
    elif kind == "hair":
        colour = _colour(((30, 20, 15), (60, 40, 30), (90, 70, 50)), rng)
        for _ in range(int(rng.integers(3, 15))):
            start = rng.uniform(0, 1, 2) * (w, h)
            pts = (start + rng.uniform(-0.35, 0.35, (3, 2)) * (w, h)).astype(np.float32)
            t = np.linspace(0, 1, 24)[:, None]
            curve = ((1 - t) ** 2 * pts[0] + 2 * (1 - t) * t * pts[1] + t**2 * pts[2]).astype(np.int32)
            cv2.polylines(layer, [curve], False, colour, max(1, int(unit * rng.uniform(0.5, 1.2))), cv2.LINE_AA)
    elif kind == "rim":
        yy, xx = np.mgrid[0:h, 0:w]
        d = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
        edge = rng.uniform(0.95, 1.3)
        shade = np.clip((edge - d) / 0.12, 0, 1)[..., None]
        if (shade[lesion] < 0.95).any():  # the rim would darken the lesion: no rim on this one
            return image
        return (image.astype(np.float32) * (0.1 + 0.9 * shade)).astype(np.uint8)
    elif kind == "ruler":
        y = int(rng.uniform(0.75, 0.95) * h)
        x0, x1 = int(rng.uniform(0.05, 0.3) * w), int(rng.uniform(0.6, 0.95) * w)
        colour = _colour(((50, 50, 50), (90, 90, 100)), rng)
        cv2.line(layer, (x0, y), (x1, y), colour, max(1, int(unit)), cv2.LINE_AA)
        for x in range(x0, x1, max(2, int(4 * unit))):
            cv2.line(layer, (x, y), (x, y - int(rng.choice((2, 4)) * unit)), colour, 1, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown artefact {kind!r}; expected one of {KINDS}")
    keep = lesion if kind != "hair" else np.zeros_like(lesion)
    alpha = rng.uniform(0.6, 0.95)
    blended = (alpha * layer.astype(np.float32) + (1 - alpha) * image.astype(np.float32)).astype(np.uint8)
    return np.where(keep[..., None], image, blended)


def _lesion_centre(lesion: np.ndarray) -> tuple[tuple[int, int], float]:
    """(x, y) centre and half-diagonal of the lesion's bounding box (image centre if none)."""
    h, w = lesion.shape
    if not lesion.any():
        return (w // 2, h // 2), min(h, w) / 8.0
    ys, xs = np.nonzero(lesion)
    return (int(xs.mean()), int(ys.mean())), 0.5 * float(np.hypot(np.ptp(xs) + 1, np.ptp(ys) + 1))


def _outside(lesion: np.ndarray, radius: int, rng: np.random.Generator, tries: int = 20) -> tuple[int, int] | None:
    """A centre whose disk of ``radius`` misses the lesion (may leave the frame), or None."""
    h, w = lesion.shape
    far = cv2.distanceTransform((~lesion).astype(np.uint8), cv2.DIST_L2, 3) if lesion.any() else None
    for _ in range(tries):
        x, y = int(rng.uniform(-0.2, 1.2) * w), int(rng.uniform(-0.2, 1.2) * h)
        inside = 0 <= x < w and 0 <= y < h
        if far is None or (inside and far[y, x] > radius + 2) or (not inside and _clear(far, x, y, radius)):
            return x, y
    return None


def _clear(far: np.ndarray, x: int, y: int, radius: int) -> bool:
    h, w = far.shape
    cx, cy = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
    return bool(far[cy, cx] > radius + 2 - np.hypot(x - cx, y - cy))


def _colour(choices: tuple[tuple[int, int, int], ...], rng: np.random.Generator) -> tuple[int, int, int]:
    base = np.array(choices[int(rng.integers(len(choices)))], np.float32)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 12, 3), 0, 255))
