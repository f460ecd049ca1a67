"""Evaluation reports: metric table, confusion matrix, per-image CSV, training curves,
and review sheets of the typical, best and worst images by Dice.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .figures import DISCLAIMER, confusion_figure, save_figure
from .metrics import METRICS, Evaluation

EXPERT_COLOR, MODEL_COLOR = "#00ff66", "#ff00cc"  # outlines in every review sheet: green expert, magenta model
TABLE_METRICS = ("dice", "jaccard", "threshold_jaccard", "precision", "sensitivity", "specificity", "accuracy", "f1")


def write_per_image(path: str | Path, evaluation: Evaluation) -> Path:
    """Per-image metrics and confusion counts as CSV, one row per image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *METRICS, "tp", "fp", "fn", "tn"])
        for image_id, confusion, row in zip(evaluation.ids, evaluation.confusions, evaluation.per_image):
            writer.writerow([image_id, *(f"{row[m]:.6f}" for m in METRICS), *confusion.as_dict().values()])
    return path


def metric_table(rows: dict[str, dict], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """A Markdown table: one row per named summary (macro-averaged metrics)."""
    lines = ["| model | " + " | ".join(metrics) + " |", "| --- |" + " --- |" * len(metrics)]
    lines += [f"| {name} | " + " | ".join(f"{summary[m]:.4f}" for m in metrics) + " |" for name, summary in rows.items()]
    return "\n".join(lines)


def review_picks(evaluation: Evaluation, n: int = 6) -> dict[str, list[int]]:
    """Indices of the typical (closest to the median Dice), best and worst images."""
    dice = np.array([row["dice"] for row in evaluation.per_image])
    order = np.argsort(dice, kind="stable")
    median = np.median(dice)
    typical = np.argsort(np.abs(dice - median), kind="stable")[:n]
    return {"typical": typical.tolist(), "best": order[::-1][:n].tolist(), "worst": order[:n].tolist()}


def overlay_sheet(panels: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]], path: str | Path, title: str) -> Path:
    """Photographs with the expert outline (green) and the prediction (magenta), one per panel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows + 0.4), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, truth, pred, label) in zip(axes.flat, panels):
        ax.imshow(image)
        mask_outline(ax, truth, color=EXPERT_COLOR, linestyle="-")
        mask_outline(ax, pred, color=MODEL_COLOR, linestyle="--")
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        ax.set_title(label, fontsize=9)
    fig.suptitle(f"{title}   (green: expert mask, magenta dashed: model)", fontsize=10)
    fig.text(0.5, 0.005, DISCLAIMER, ha="center", fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    return save_figure(fig, path)


def mask_outline(ax, mask: np.ndarray, color: str, linestyle: str, linewidth: float = 1.4) -> None:
    """Draw a mask's outline on a matplotlib axis, including where it runs along the image border
    (nothing for an empty mask)."""
    if not np.any(mask):
        return
    padded = np.pad(np.asarray(mask, dtype=np.uint8), 1)
    rows, cols = padded.shape
    ax.contour(np.arange(cols) - 1, np.arange(rows) - 1, padded, levels=[0.5], colors=color, linewidths=linewidth, linestyles=linestyle)


def training_curves(log_rows: list[dict[str, float]], path: str | Path, title: str) -> Path:
    """Loss and validation Dice per epoch from a Keras CSV log, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) + 1 for r in log_rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    left.plot(epochs, [r["loss"] for r in log_rows], marker=".", label="training loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    right.plot(epochs, [r.get("val_dice", np.nan) for r in log_rows], marker=".", color="tab:green", label="validation Dice (model resolution)")
    right.set_xlabel("epoch")
    right.set_ylabel("Dice")
    right.legend(loc="lower right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def write_report(
    out_dir: str | Path,
    name: str,
    evaluation: Evaluation,
    load_panel: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]],
    log_rows: list[dict[str, float]] | None = None,
) -> dict:
    """Write the full evaluation report of one model into ``out_dir``; return its summary.

    ``load_panel(i)`` gives (image, truth, prediction) of image ``i`` for the review sheets.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = evaluation.summary()
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "metrics.md").write_text(metric_table({name: summary}) + f"\n\n{summary['n_images']} images. {DISCLAIMER}\n")
    confusion_figure(evaluation.pooled, out / "confusion_matrix.png", title=f"{name}: pooled confusion matrix")
    write_per_image(out / "per_image.csv", evaluation)
    if log_rows:
        training_curves(log_rows, out / "training_curves.png", f"{name}: training")
    for kind, indices in review_picks(evaluation).items():
        panels = []
        for i in indices:
            image, truth, pred = load_panel(i)
            panels.append((image, truth, pred, f"{evaluation.ids[i]}  Dice {evaluation.per_image[i]['dice']:.3f}"))
        overlay_sheet(panels, out / f"review_{kind}.png", f"{name}: {kind} images by Dice")
    return summary
