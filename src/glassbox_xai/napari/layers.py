"""Headless helpers of the widgets: layer names, styles and legends, input checks, metric tables.

No Qt here, and no TensorFlow: these take and return plain arrays and dicts, so
they are tested without a viewer.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..data.io import ImageConversionWarning, as_rgb8
from ..figures import DISCLAIMER
from ..metrics import Confusion, scores
from ..xai.legend import CALIBRATED_MAPS, LEGENDS, calibration_note, legend_for, palette_at, palette_colors

LESION_COLOR = "#ff00cc"
VARIANT_COLORS = {"dice": "#ff00cc", "balanced": "#ffd400", "recall": "#00c8ff"}
EXTRA_COLORS = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
TABLE = (("dice", "Dice"), ("jaccard", "IoU (Jaccard)"), ("threshold_jaccard", "thresholded Jaccard"), ("precision", "precision"),
         ("sensitivity", "recall (sensitivity)"), ("specificity", "specificity"), ("accuracy", "pixel accuracy"), ("f1", "F1"))


def model_label(result: dict) -> str:
    """What a result's layers are named by: a fine-tuned version's name (two versions of one
    variant keep separate layers), else the model's variant."""
    card = result["card"]
    return card.get("label") or card["variant"]


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


def map_layer_name(image_name: str, map_name: str, variant: str) -> str:
    """A short layer name that fits napari's layer list: image, the map's short name, variant
    (the full title is in the layer's metadata and the legend)."""
    legend, layer = legend_for(map_name)
    if layer is None or not (legend.stacked or layer.startswith(legend.key)):
        return f"{image_name} {legend.short} ({variant})"
    if layer.startswith(legend.key):
        return f"{image_name} {legend.short} {layer[len(legend.key):].strip()} ({variant})"  # attention0 -> "attn 0"
    return f"{image_name} {legend.short} {layer} ({variant})"  # a layer outside the stack: its own layer


def map_colormap(palette: str) -> dict:
    """A napari colour map argument (plain data, no napari import) for one of the legend palettes."""
    controls, colors = palette_colors(palette)
    return {"name": f"glassbox {palette}", "colors": [list(c) for c in colors], "controls": controls}


def map_style(name: str, values: np.ndarray) -> dict:
    """Colour map (transparent where the map says nothing), contrast limits, blending and opacity."""
    legend, _ = legend_for(name)
    return {"colormap": map_colormap(legend.palette), "contrast_limits": legend.value_range(values),
            "blending": "translucent", "opacity": 0.8}


def map_metadata(image_name: str, map_name: str, variant: str, layers: list[str] | None = None, calibration: dict | None = None) -> dict:
    """What a map layer is, for the legend panel and for anyone reading ``layer.metadata``; a map
    made from calibrated probabilities also says, from the card's ``calibration``, what its colours mean."""
    legend, layer = legend_for(map_name)
    meta = {"glassbox_map": legend.key, "image": image_name, "variant": variant, "title": legend.title,
            "meaning": legend.meaning, "units": legend.units, "description": legend.describe(layer)}
    if layers is not None:
        meta["layers"] = list(layers)
    if legend.key in CALIBRATED_MAPS and calibration is not None:
        meta["calibration"] = calibration_note(calibration)
    return meta


def stack_layers(maps: dict[str, np.ndarray], stages: dict[str, list[str]], family: str = "gradcam") -> tuple[np.ndarray | None, list[str]]:
    """Remove the per-layer maps of ``family`` from ``maps`` and stack them in stage order,
    returning the stack (layers, rows, cols) and its labels ``"stage: layer"``."""
    names, planes = [], []
    for stage in STAGE_ORDER:
        for layer in stages.get(stage, []):
            key = f"{family} {layer}"
            if key in maps:
                planes.append(maps.pop(key))
                names.append(f"{stage}: {layer}")
    return (np.stack(planes) if planes else None), names


def stacked_families() -> list[str]:
    """The map families shown as one stack with a slider over the network's layers."""
    return [key for key, legend in LEGENDS.items() if legend.stacked]


SKIN = np.array([222, 184, 160], dtype=np.float64)  # the swatch background: how a colour looks over skin


def legend_html(metadata: dict, contrast_limits: tuple[float, float], plane: int | None = None) -> str:
    """The legend of a map layer for the dock: title (and network layer), a colour strip
    with its range and units, and the one-line meaning."""
    legend = LEGENDS[metadata["glassbox_map"]]
    low, high = (float(v) for v in contrast_limits)
    title = legend.title
    layers = metadata.get("layers") or []
    if plane is not None and 0 <= plane < len(layers):
        title += f", layer {plane + 1}/{len(layers)}: <b>{layers[plane]}</b>"
    elif metadata.get("description", "").startswith(f"{legend.title}, "):
        title = metadata["description"].split(" [", 1)[0]
    rgba = palette_at(legend.palette, np.linspace(0.0, 1.0, 24))
    cells = "".join(f"<td bgcolor='#{_over_skin(c)}'>&nbsp;</td>" for c in rgba)
    return (f"<p><b>{title}</b> <small>({metadata.get('variant', '')})</small></p>"
            f"<table cellspacing=0 cellpadding=0 width='100%'><tr>{cells}</tr></table>"
            f"<table width='100%'><tr><td>{_number(low)}</td><td align='center'><small>{legend.units}</small></td>"
            f"<td align='right'>{_number(high)}</td></tr></table><p>{legend.meaning}</p>"
            + (f"<p><small>{metadata['calibration']}</small></p>" if metadata.get("calibration") else ""))


def _over_skin(rgba: np.ndarray) -> str:
    rgb = rgba[3] * np.asarray(rgba[:3]) * 255 + (1 - rgba[3]) * SKIN
    return "".join(f"{int(round(v)):02x}" for v in rgb)


def _number(value: float) -> str:
    return "0" if value == 0 else f"{value:.3g}"


def variant_color(name: str, index: int = 0) -> str:
    """The colour of a model variant in every widget: dice magenta, balanced yellow, recall cyan;
    other models (fine-tuned versions, bundles) take a colour from a cycle by their ``index``."""
    return VARIANT_COLORS.get(name, EXTRA_COLORS[index % len(EXTRA_COLORS)])


RANDOM_MARGIN = 0.05  # a deletion area less than this below the random order's says little


def faithfulness_html(numbers: dict[str, dict]) -> str:
    """Faithfulness numbers as a narrow HTML table: one row per method, one column per measure
    (it grows downwards, not past the dock's edge, as methods are added), a row for a random
    pixel order to compare with, a mark on maps no better than random, and every warning
    (completeness error above 1%, degenerate curves) said in words below it."""
    if not numbers:
        return f"<i>{DISCLAIMER}</i>"
    measures = [(key, label) for key, label in (("deletion_auc", "del. ↓"), ("insertion_auc", "ins. ↑"),
                                                 ("mass_inside_truth", "in GT"), ("completeness_error", "IG err."))
                if any(key in values for values in numbers.values())]  # short headers: the table fits the dock
    random = next((values for values in numbers.values() if "random_deletion_auc" in values), None)

    def cell(method: str, values: dict, key: str) -> str:
        if key not in values:
            return "<td></td>"
        value = values[key]
        if not np.isfinite(value):
            return "<td align='right'>n/a</td>"
        mark = ""
        if key == "deletion_auc" and random is not None and value > random["random_deletion_auc"] - RANDOM_MARGIN:
            mark = "*"
        if key == "completeness_error" and "completeness_warning" in values:
            mark = " ⚠"
        return f"<td align='right'>{value:.3f}{mark}</td>"

    rows = "".join(f"<tr><td>{FAITHFULNESS_NAMES.get(method, method)}</td>" + "".join(cell(method, values, key) for key, _ in measures) + "</tr>"
                   for method, values in numbers.items())
    if random is not None:
        baseline = {"deletion_auc": random["random_deletion_auc"], "insertion_auc": random["random_insertion_auc"]}
        rows += "<tr><td><i>random order</i></td>" + "".join(
            f"<td align='right'><i>{baseline[key]:.3f}</i></td>" if key in baseline else "<td></td>" for key, _ in measures) + "</tr>"
    notes = []
    if random is not None and any(v.get("deletion_auc", -np.inf) > random["random_deletion_auc"] - RANDOM_MARGIN for v in numbers.values()):
        notes.append(f"* deletion area within {RANDOM_MARGIN} of a random pixel order's: this map does not show which pixels "
                     "the prediction rests on.")
    for method, values in numbers.items():
        for key in ("completeness_warning", "degenerate"):
            if key in values:
                notes.append(f"⚠ {FAITHFULNESS_NAMES.get(method, method)}: {values[key]}")
    if any(not np.isfinite(v) for values in numbers.values() for k, v in values.items() if k in dict(measures)):
        notes.append("n/a: the curve is undefined here (for example an empty target).")
    said = "".join(f"<p><small>{note}</small></p>" for note in notes)
    return (f"<table cellspacing=3><tr><th></th>{''.join(f'<th>{label}</th>' for _, label in measures)}</tr>{rows}</table>{said}"
            f"<p>Del. and ins.: areas under the deletion and insertion curves as the most relevant pixels are removed "
            f"(ROAD) or put back (lower deletion and higher insertion mean a more faithful map). In GT: share of "
            f"attribution inside the ground truth. IG err.: integrated-gradients completeness error.</p><p><i>{DISCLAIMER}</i></p>")


FAITHFULNESS_NAMES = {"saliency-sigmoid": "saliency σ", "ig": "IG", "gradcam": "Grad-CAM", "hirescam": "HiRes-CAM",
                      "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}


def comparison_html(names: list[str], results: list[dict]) -> str:
    """Metric rows by model columns (macro metrics of one image), with each model's colour."""
    head = "".join(f"<th><font color='{c}'>{n}</font></th>" for n, c in zip(names, variant_colors(names)))
    if not all("metrics" in r for r in results):
        return f"<p>Outlines: {head}</p><p>Choose a ground truth layer to compare metrics.</p><p><i>{DISCLAIMER}</i></p>"
    rows = "".join(
        f"<tr><td>{label}</td>" + "".join(f"<td align='right'>{r['metrics'][key]:.4f}</td>" for r in results) + "</tr>"
        for key, label in TABLE
    )
    return f"<table><tr><th></th>{head}</tr>{rows}</table><p><i>{DISCLAIMER}</i></p>"


def variant_colors(names: list[str]) -> list[str]:
    """The outline colour of each model: the shipped variants' own, then a cycle for other bundles."""
    return [variant_color(n, i) for i, n in enumerate(names)]


def _compact(count: int) -> str:
    """A pixel count in three significant figures: 987, 12.3k, 4.56M."""
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def confusion_html(variants: list[dict]) -> str:
    """The pooled confusion matrix of each variant (rows: prediction, columns: truth), in one
    compact table: the share of all pixels, and the count in small print."""
    rows = []
    for v, color in zip(variants, variant_colors([v["name"] for v in variants])):
        c = v["confusion"]
        total = sum(c.values()) or 1
        tp, fp, fn, tn = (f"<td align='right'>{k.upper()} {c[k] / total:.1%} <small>({_compact(c[k])})</small></td>" for k in ("tp", "fp", "fn", "tn"))
        rows.append(f"<tr><td rowspan=2><b><font color='{color}'>{v['name']}</font></b></td><td>pred. lesion</td>{tp}{fp}</tr>"
                    f"<tr><td>pred. skin</td>{fn}{tn}</tr>")
    head = "<tr><th></th><th></th><th>truth lesion</th><th>truth skin</th></tr>"
    return f"<table border=1 cellspacing=0 cellpadding=2>{head}{''.join(rows)}</table>"


def folder_comparison_html(variants: list[dict]) -> str:
    """Macro metrics (mean over images) by model columns, then the pooled confusion matrices,
    and the images that could not be read."""
    names = [v["name"] for v in variants]
    head = "".join(f"<th><font color='{c}'>{n}</font></th>" for n, c in zip(names, variant_colors(names)))
    rows = "".join(
        f"<tr><td>{label}</td>" + "".join(f"<td align='right'>{v['metrics'][key]:.4f}</td>" for v in variants) + "</tr>"
        for key, label in TABLE
    )
    n = variants[0]["n_images"] if variants else 0
    failures = variants[0]["failures"] if variants else []
    skipped = ""
    if failures:
        listed = ", ".join(f["id"] for f in failures[:5]) + (" …" if len(failures) > 5 else "")
        skipped = f"<p><font color='#ff7f0e'>{len(failures)} image(s) could not be read and were left out: {listed}</font></p>"
    return (f"<p><b>Mean over {n} images</b> (macro)</p><table cellpadding=1><tr><th></th>{head}</tr>{rows}</table>"
            f"{skipped}<p><b>Pooled pixels</b> (all images together)</p>{confusion_html(variants)}<p><i>{DISCLAIMER}</i></p>")


def case_choices(variants: list[dict]) -> list[tuple[str, tuple[int, str, str]]]:
    """``(label, (variant index, kind, image id))`` for the best, typical and worst images of each
    variant by Dice, for a ComboBox."""
    choices = []
    for i, v in enumerate(variants):
        for kind in ("best", "typical", "worst"):
            for image_id in v["picks"][kind]:
                choices.append((f"{v['name']} · {kind} · {image_id} · Dice {v['dice'][image_id]:.3f}", (i, kind, image_id)))
    return choices


GALLERY_GROUPS = ("failures", "good explanations", "bad explanations")  # as xai.gallery.GROUPS (no TensorFlow here)


def gallery_items(galleries: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """``(label, image id)`` per gallery group, in the group's order, for every variant's
    galleries (``{variant name: Gallery.as_dict()}``): the id, the Dice and the share of the
    map's attribution inside the expert mask, then the variant when there are several."""
    items: dict[str, list[tuple[str, str]]] = {group: [] for group in GALLERY_GROUPS}
    for name, gallery in galleries.items():
        cases = {c["id"]: c for c in gallery["cases"]}
        rank_by = gallery["maps"][0]
        for group in GALLERY_GROUPS:
            for image_id in gallery["groups"][group]:
                share = cases[image_id]["shares"][rank_by]
                inside = f"{share:.0%}" if np.isfinite(share) else "no map"  # NaN: no lesion predicted, nothing explained
                variant = f" · {name}" if len(galleries) > 1 else ""
                items[group].append((f"{image_id} · Dice {cases[image_id]['dice']:.3f} · {inside}{variant}", image_id))
    return items


def gallery_html(galleries: dict[str, dict]) -> str:
    """One line per variant: the map that ranks its galleries and its mean share inside the expert masks."""
    lines = []
    for name, gallery in galleries.items():
        rank_by = gallery["maps"][0]
        shares = [c["shares"][rank_by] for c in gallery["cases"] if np.isfinite(c["shares"][rank_by])]
        mean = f"{np.mean(shares):.1%}" if shares else "n/a"
        lines.append(f"{name}: {rank_by} puts on average {mean} of its attribution inside the expert mask "
                     f"({len(shares)} of {len(gallery['cases'])} images have a map)")
    if not lines:
        return ""
    return "<p><b>Galleries</b> (click a case below to open it)<br>" + "<br>".join(lines) + "</p>"


def before_after_html(comparison: dict[str, dict] | None) -> str:
    """Held-out metrics of a model before and after fine-tuning, with the change."""
    if not comparison:
        return f"<p>Name a held-out folder with masks to compare before and after.</p><p><i>{DISCLAIMER}</i></p>"
    before, after = comparison["before"], comparison["after"]
    rows = "".join(
        f"<tr><td>{label}</td><td align='right'>{before[key]:.3f}</td><td align='right'>{after[key]:.3f}</td>"
        f"<td align='right'>{after[key] - before[key]:+.3f}</td></tr>"
        for key, label in TABLE if key in before and key in after
    )
    return (f"<p>On {before.get('n_images', '')} held-out images:</p><table><tr><th></th><th>before</th><th>after</th><th>Δ</th></tr>"
            f"{rows}</table><p><i>{DISCLAIMER}</i></p>")
