"""Figures of explanation maps: image, mask outline, heat map with a colour bar; and a
Grad-CAM and HiRes-CAM sheet per stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..figures import DISCLAIMER, save_figure

DIVERGING = ("integrated gradients",)
UNIT_RANGE = ("confidence", "superpixel confidence")  # and every attention map: values in [0, 1]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _display(image: np.ndarray, max_side: int = 1024) -> tuple[np.ndarray, tuple[slice, slice], float]:
    """A view of ``image`` at most ``max_side`` px a side, the slices that made it, and
    the ``aspect`` that keeps its true proportions on screen.

    Each axis has its own step, so a photograph one pixel wide (or 10000 x 10) keeps
    every column instead of collapsing to a single one.
    """
    rows, cols = image.shape[:2]
    row_step, col_step = (max(1, int(np.ceil(n / max_side))) for n in (rows, cols))
    view = (slice(None, None, row_step), slice(None, None, col_step))
    return image[view], view, row_step / col_step


def _outline(ax, mask: np.ndarray, **style) -> None:
    """The 0.5 contour of a mask; nothing for a mask too small or without both values."""
    if min(mask.shape) >= 2 and mask.any() and not mask.all():
        ax.contour(mask, levels=[0.5], **style)


def map_figure(image: np.ndarray, mask: np.ndarray, values: np.ndarray, title: str, path: str | Path) -> Path:
    """Three panels: the photograph, its predicted outline, the map over it with a colour bar."""
    plt = _plt()
    if values.shape != image.shape[:2] or mask.shape != image.shape[:2]:
        raise ValueError(f"map {title!r} {values.shape} and mask {mask.shape} must have the photograph's size {image.shape[:2]}")
    shown, view, aspect = _display(image)
    values, mask = values[view], mask[view]
    diverging = title in DIVERGING
    unit_range = title in UNIT_RANGE or title.startswith("attention")
    limit = 1.0 if unit_range else float(np.percentile(np.abs(values), 99.5)) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=100)
    axes[0].imshow(shown, aspect=aspect)
    # Titles at y=1.0 (where matplotlib puts them over axes without ticks) turn off its automatic
    # title placement, which measures every axis's tick labels at each draw: up to a third of the time.
    axes[0].set_title("photograph", fontsize=10, y=1.0)
    axes[1].imshow(shown, aspect=aspect)
    _outline(axes[1], mask, colors="#ff00cc", linewidths=1.2)
    axes[1].set_title("predicted lesion outline", fontsize=10, y=1.0)
    axes[2].imshow(shown, aspect=aspect)
    heat = axes[2].imshow(values, cmap="RdBu_r" if diverging else "inferno", alpha=0.6, aspect=aspect,
                          vmin=-limit if diverging else 0.0, vmax=limit if diverging else max(limit, 1e-12))
    _outline(axes[2], mask, colors="white", linewidths=0.8)
    axes[2].set_title(title, fontsize=10, y=1.0)
    fig.colorbar(heat, ax=axes[2], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    fig.text(0.5, 0.01, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path)


def stage_sheet(image: np.ndarray, maps: dict[str, np.ndarray], stage: str, path: str | Path, method: str = "Grad-CAM") -> Path:
    """Every layer map of one stage (Grad-CAM, or ``method``) over the photograph, one panel per layer."""
    plt = _plt()
    shown, view, aspect = _display(image, 384)
    cols = min(4, len(maps))
    rows = int(np.ceil(len(maps) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows + 0.5), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, values) in zip(axes.flat, maps.items()):
        ax.imshow(shown, aspect=aspect)
        ax.imshow(values[view], cmap="inferno", alpha=0.6, vmin=0, vmax=1, aspect=aspect)
        ax.set_title(name, fontsize=8, y=1.0)
    fig.suptitle(f"{method}, {stage} stage (each layer scaled to its own maximum)", fontsize=11)
    fig.text(0.5, 0.005, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    return _save(fig, path)


def _save(fig, path) -> Path:
    """PNG at zlib level 1: a third faster to encode than the default 6, files about 20% larger."""
    return save_figure(fig, path, pil_kwargs={"compress_level": 1})
