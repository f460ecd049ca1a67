"""Figures of explanation maps: image, mask outline, heat map with a colour bar; and a
Grad-CAM sheet per stage."""

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


def _display(image: np.ndarray, max_side: int = 1024) -> tuple[np.ndarray, int]:
    step = max(1, int(np.ceil(max(image.shape[:2]) / max_side)))
    return image[::step, ::step], step


def map_figure(image: np.ndarray, mask: np.ndarray, values: np.ndarray, title: str, path: str | Path) -> Path:
    """Three panels: the photograph, its predicted outline, the map over it with a colour bar."""
    plt = _plt()
    shown, step = _display(image)
    values, mask = values[::step, ::step], mask[::step, ::step]
    diverging = title in DIVERGING
    unit_range = title in UNIT_RANGE or title.startswith("attention")
    limit = 1.0 if unit_range else float(np.percentile(np.abs(values), 99.5)) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), dpi=100)
    axes[0].imshow(shown)
    axes[0].set_title("photograph", fontsize=10)
    axes[1].imshow(shown)
    axes[1].contour(mask, levels=[0.5], colors="#ff00cc", linewidths=1.2)
    axes[1].set_title("predicted lesion outline", fontsize=10)
    axes[2].imshow(shown)
    heat = axes[2].imshow(values, cmap="RdBu_r" if diverging else "inferno", alpha=0.6,
                          vmin=-limit if diverging else 0.0, vmax=limit if diverging else max(limit, 1e-12))
    axes[2].contour(mask, levels=[0.5], colors="white", linewidths=0.8)
    axes[2].set_title(title, fontsize=10)
    fig.colorbar(heat, ax=axes[2], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.axis("off")
    fig.text(0.5, 0.01, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _save(fig, path)


def stage_sheet(image: np.ndarray, maps: dict[str, np.ndarray], stage: str, path: str | Path) -> Path:
    """Every layer map of one Grad-CAM stage over the photograph, one panel per layer."""
    plt = _plt()
    shown, step = _display(image, 384)
    cols = min(4, len(maps))
    rows = int(np.ceil(len(maps) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows + 0.5), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, values) in zip(axes.flat, maps.items()):
        ax.imshow(shown)
        ax.imshow(values[::step, ::step], cmap="inferno", alpha=0.6, vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
    fig.suptitle(f"Grad-CAM, {stage} stage (each layer scaled to its own maximum)", fontsize=11)
    fig.text(0.5, 0.005, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    return _save(fig, path)


def _save(fig, path) -> Path:
    return save_figure(fig, path)
