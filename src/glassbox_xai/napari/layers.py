"""Headless helpers of the widgets: layer names and styles, input checks, metric tables.

No Qt here, and no TensorFlow: these take and return plain arrays and dicts, so
they are tested without a viewer.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.io import ImageConversionWarning, as_rgb8
from ..figures import DISCLAIMER
from ..metrics import Confusion, scores

LESION_COLOR = "#ff00cc"
TABLE = (("dice", "Dice"), ("jaccard", "IoU (Jaccard)"), ("threshold_jaccard", "thresholded Jaccard"), ("precision", "precision"),
         ("sensitivity", "recall (sensitivity)"), ("specificity", "specificity"), ("accuracy", "pixel accuracy"), ("f1", "F1"))


def prediction_name(image_name: str, variant: str) -> str:
    return f"{image_name} prediction ({variant})"


def probability_name(image_name: str, variant: str) -> str:
    return f"{image_name} probability ({variant})"


def image_for_model(data, name: str) -> tuple[np.ndarray, list[str]]:
    """An image layer's data as (H, W, 3) uint8 RGB, with the conversions made, as messages.

    Raises:
        ValueError: the data is not a 2-D grayscale or colour image (a stack, say).
    """
    array = np.asarray(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageConversionWarning)
        rgb = as_rgb8(array, name)
    return rgb, [str(w.message) for w in caught if issubclass(w.category, ImageConversionWarning)]


def truth_for_image(data, image_shape: tuple[int, int], name: str) -> np.ndarray:
    """A ground-truth Labels layer's data as a bool mask; its size must be the image's."""
    mask = np.asarray(data)
    if mask.ndim != 2 or mask.shape != tuple(image_shape):
        raise ValueError(f"ground truth layer '{name}' is {mask.shape}, but the image is {tuple(image_shape)}; expected the same size")
    return mask > 0


def metrics_html(metrics: dict[str, float], confusion: dict[str, int]) -> str:
    """The per-image metric table and confusion breakdown as a small HTML table."""
    rows = "".join(f"<tr><td>{label}</td><td align='right'>{metrics[key]:.4f}</td></tr>" for key, label in TABLE)
    total = sum(confusion.values()) or 1
    parts = "".join(f"<tr><td>{k.upper()}</td><td align='right'>{v:,} ({v / total:.1%})</td></tr>" for k, v in confusion.items())
    return f"<table>{rows}<tr><td colspan=2><b>pixels</b></td></tr>{parts}</table><p><i>{DISCLAIMER}</i></p>"


def core_metrics(prediction: np.ndarray, truth: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
    """The challenge metrics of one prediction against its ground truth."""
    confusion = Confusion.from_masks(prediction, truth)
    return scores(confusion), confusion.as_dict()


TARGET_CHOICES = ["prediction", "truth", "background", "drawn region"]
STAGE_ORDER = ("encoder", "attention", "decoder", "output")


def map_style(name: str, values: np.ndarray) -> dict:
    """Colour map, contrast limits, blending and opacity that read well over skin."""
    if name.startswith(("attention", "confidence", "superpixel")) or name == "gradcam":
        return {"colormap": "turbo" if name.startswith("attention") else "viridis", "contrast_limits": (0.0, 1.0),
                "blending": "translucent", "opacity": 0.55}
    if name == "integrated gradients":
        limit = float(np.percentile(np.abs(values), 99.5)) or 1.0
        return {"colormap": "bwr", "contrast_limits": (-limit, limit), "blending": "translucent", "opacity": 0.6}
    limit = float(np.percentile(values, 99.5)) or float(values.max()) or 1.0
    return {"colormap": "inferno", "contrast_limits": (0.0, limit), "blending": "additive", "opacity": 0.8}


def stack_gradcam(maps: dict[str, np.ndarray], stages: dict[str, list[str]]) -> tuple[np.ndarray | None, list[str]]:
    """Remove the per-layer Grad-CAM maps from ``maps`` and stack them in stage order,
    returning the stack (layers, rows, cols) and its labels ``"stage: layer"``."""
    names, planes = [], []
    for stage in STAGE_ORDER:
        for layer in stages.get(stage, []):
            key = f"gradcam {layer}"
            if key in maps:
                planes.append(maps.pop(key))
                names.append(f"{stage}: {layer}")
    return (np.stack(planes) if planes else None), names


def faithfulness_html(numbers: dict[str, dict]) -> str:
    """Faithfulness numbers per method as a small HTML table."""
    if not numbers:
        return f"<i>{DISCLAIMER}</i>"
    keys = ("deletion_auc", "insertion_auc", "mass_inside_truth", "completeness_error")
    short = {"deletion_auc": "deletion", "insertion_auc": "insertion", "mass_inside_truth": "in truth", "completeness_error": "IG error"}
    head = "".join(f"<th>{short[k]}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{method}</td>" + "".join(f"<td align='right'>{values[k]:.3f}</td>" if k in values else "<td></td>" for k in keys) + "</tr>"
        for method, values in numbers.items()
    )
    return (f"<table><tr><th></th>{head}</tr>{rows}</table><p>Areas under the deletion and insertion curves:<br>"
            f"lower deletion and higher insertion mean a more faithful map.<br>In truth: share of attribution inside the "
            f"ground truth.<br>IG error: integrated-gradients completeness error.</p><p><i>{DISCLAIMER}</i></p>")


VARIANT_COLORS = {"dice": "#ff00cc", "balanced": "#ffd400", "recall": "#00c8ff"}
EXTRA_COLORS = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def comparison_html(names: list[str], results: list[dict]) -> str:
    """Metric rows by model columns (macro metrics of one image), with each model's colour."""
    colors = [VARIANT_COLORS.get(n, EXTRA_COLORS[i % len(EXTRA_COLORS)]) for i, n in enumerate(names)]
    head = "".join(f"<th><font color='{c}'>{n}</font></th>" for n, c in zip(names, colors))
    if not all("metrics" in r for r in results):
        return f"<p>Outlines: {head}</p><p>Choose a ground truth layer to compare metrics.</p><p><i>{DISCLAIMER}</i></p>"
    rows = "".join(
        f"<tr><td>{label}</td>" + "".join(f"<td align='right'>{r['metrics'][key]:.4f}</td>" for r in results) + "</tr>"
        for key, label in TABLE
    )
    return f"<table><tr><th></th>{head}</tr>{rows}</table><p><i>{DISCLAIMER}</i></p>"
