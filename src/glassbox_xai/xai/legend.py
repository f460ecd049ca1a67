"""What each explanation map means, in one table shared by the napari legend and the figures.

Every map an explanation returns (a key of :class:`~glassbox_xai.xai.panel.Panel.maps`)
has a :class:`MapLegend`: a short name for the layer list, a title, a one-line
meaning, its units, how its colour range is set, and a palette whose "nothing to
see" end is transparent. Maps computed for every network layer (``"gradcam
encoder1_conv2"``) share the legend of their family (``"gradcam"``).

To add a method, add one entry to :data:`LEGENDS` (a per-layer family sets
``per_layer=True`` and names its maps ``"<key> <layer name>"``; ``stacked=True`` shows
them as one layer with a slider in network order), and its label to
:data:`METHOD_LABELS`. No napari, no Qt, no TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Palettes: (position in [0, 1], (r, g, b, alpha)) stops. Where a map says "nothing
# here" its colour is fully transparent, so the photograph shows through.
PALETTES: dict[str, tuple[tuple[float, tuple[float, float, float, float]], ...]] = {
    # transparent at 0, then purple, orange, pale yellow (inferno's hues)
    "heat": ((0.0, (0.26, 0.04, 0.41, 0.0)), (0.25, (0.47, 0.11, 0.43, 0.55)), (0.5, (0.87, 0.32, 0.23, 0.8)),
             (0.75, (0.99, 0.65, 0.04, 0.9)), (1.0, (0.99, 1.0, 0.64, 1.0))),
    # transparent at 0, then teal to pale green (probabilities, gate coefficients)
    "teal": ((0.0, (0.0, 0.25, 0.35, 0.0)), (0.5, (0.05, 0.62, 0.72, 0.6)), (1.0, (0.65, 1.0, 0.85, 0.95))),
    # blue (negative) .. transparent (zero, the middle) .. red (positive)
    "diverging": ((0.0, (0.15, 0.35, 1.0, 1.0)), (0.25, (0.45, 0.62, 1.0, 0.6)), (0.5, (1.0, 1.0, 1.0, 0.0)),
                  (0.75, (1.0, 0.45, 0.35, 0.6)), (1.0, (0.9, 0.05, 0.05, 1.0))),
    # certainty: bright orange where the model is undecided (0), transparent where it is sure (1)
    "doubt": ((0.0, (1.0, 0.5, 0.0, 0.95)), (0.5, (1.0, 0.85, 0.2, 0.45)), (1.0, (1.0, 1.0, 0.6, 0.0))),
}

SCALES = ("unit", "sequential", "diverging")


@dataclass(frozen=True)
class MapLegend:
    """How to read one kind of explanation map.

    ``scale``: ``"unit"`` (values in [0, 1]), ``"sequential"`` (0 to the 99.5th
    percentile) or ``"diverging"`` (symmetric about 0, to the 99.5th percentile of |value|).
    ``per_layer``: one map per network layer, named ``"<key> <layer>"``; ``stacked``: those
    maps are shown as one stack with a slider over the layers (in network order).
    """

    key: str
    short: str
    title: str
    meaning: str
    units: str
    scale: str = "unit"
    palette: str = "heat"
    per_layer: bool = False
    stacked: bool = False

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"legend '{self.key}': scale {self.scale!r}; expected one of {SCALES}")
        if self.palette not in PALETTES:
            raise ValueError(f"legend '{self.key}': palette {self.palette!r}; expected one of {sorted(PALETTES)}")

    def value_range(self, values: np.ndarray) -> tuple[float, float]:
        """The colour range of ``values`` under this legend's scale (never empty)."""
        if self.scale == "unit":
            return 0.0, 1.0
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if self.scale == "diverging":
            limit = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 0.0
            limit = limit or (float(np.abs(finite).max()) if finite.size else 0.0) or 1.0
            return -limit, limit
        limit = float(np.percentile(finite, 99.5)) if finite.size else 0.0
        return 0.0, limit or (float(finite.max()) if finite.size else 0.0) or 1.0

    def describe(self, layer: str | None = None) -> str:
        """Title (with the network layer, for a per-layer map), units and meaning, as one line each."""
        title = f"{self.title}, {layer}" if layer else self.title
        return f"{title} [{self.units}]: {self.meaning}"


LEGENDS: dict[str, MapLegend] = {legend.key: legend for legend in (
    MapLegend("probability", "prob.", "lesion probability", "the model's own sigmoid output per pixel, before the "
              "card's temperature (the Explain confidence maps apply it); the mask is where this exceeds the model card's "
              "threshold.", "probability, 0-1", palette="teal"),
    MapLegend("confidence", "certainty", "pixel certainty |2p-1|", "orange where the model is undecided "
              "(calibrated probability p near 0.5), clear where it is sure of lesion or skin.", "0 undecided - 1 certain",
              palette="doubt"),
    MapLegend("superpixel confidence", "SLIC p", "superpixel lesion probability", "the mean calibrated lesion probability "
              "of each SLIC superpixel (the original GlassBox confidence map); clear where it is skin.", "probability, 0-1",
              palette="teal"),
    MapLegend("saliency", "saliency", "saliency on logits", "|gradient| of the target region's mean logit with respect "
              "to each pixel: where a small change of the photograph moves the score most. It fails the model-randomisation "
              "check on the shipped model (it follows the photograph's edges as much as the weights).", "|d logit / d pixel|",
              scale="sequential"),
    MapLegend("saliency-sigmoid", "sal. σ", "saliency on sigmoid", "|gradient| of the target region's mean "
              "probability; small where the model is saturated (already sure).", "|d probability / d pixel|",
              scale="sequential"),
    MapLegend("integrated gradients", "IG", "integrated gradients", "each pixel's share of the target's mean logit "
              "relative to the baseline: red raises it, blue lowers it; they sum to the score difference.",
              "logit contribution", scale="diverging", palette="diverging"),
    MapLegend("gradcam", "Grad-CAM", "Grad-CAM", "where this layer's features raise the target's mean logit "
              "(ReLU of gradient-weighted activations), scaled to the layer's own maximum.", "relative, 0-1",
              per_layer=True, stacked=True),
    MapLegend("hirescam", "HiRes-CAM", "HiRes-CAM", "where this layer's features raise the target's mean logit, pixel by "
              "pixel (ReLU of gradient x activation summed over channels, no gradient averaging, so it follows a drawn "
              "region), scaled to the layer's own maximum.", "relative, 0-1", per_layer=True, stacked=True),
    MapLegend("gradcam++", "Grad-CAM++", "Grad-CAM++", "Grad-CAM with each channel weighted by its positive gradients "
              "(second-order pixel weights), so several separate regions of evidence all show; scaled to its maximum.",
              "relative, 0-1", per_layer=True),
    MapLegend("scorecam", "Score-CAM", "Score-CAM", "this layer's channels weighted by the target's probability when only "
              "the pixels each channel highlights are kept (no gradients); scaled to its maximum.", "relative, 0-1",
              per_layer=True),
    MapLegend("attention", "attn", "attention coefficients", "the attention gate's weight on its skip "
              "connection: 1 passes the encoder's features on, 0 suppresses them.", "gate coefficient, 0-1",
              palette="teal", per_layer=True),
)}

#: Maps made from the probabilities at the model card's temperature (Prediction.calibrated).
CALIBRATED_MAPS = ("confidence", "superpixel confidence")


def calibration_note(calibration: dict | None) -> str:
    """What a calibrated map's colours mean for one model, from its card's ``calibration``:
    the share of lesion among pixels shown near 0.1, 0.5 and 0.9 on the validation split,
    the ECE, and how well the uncertainty finds wrong pixels."""
    if not calibration:
        return ("Not calibrated: this model's card has no calibration measurement (training/calibration.py makes one), "
                "so a probability is the model's own and may be over- or under-confident.")
    if "reliability" not in calibration:
        return (f"At temperature {calibration.get('temperature', 1.0):.2f}, but the card records no reliability measurement: "
                "how far these probabilities can be taken at their word is unknown.")
    table = calibration["reliability"]
    n_bins = len(table["frequency"])

    def share(p: float) -> str:
        value = table["frequency"][min(n_bins - 1, int(p * n_bins))]
        return "no pixels" if value is None else f"{value:.0%}"

    return (f"Calibrated (temperature {calibration['temperature']:.2f}) on {calibration.get('split', 'the validation split')}: "
            f"of pixels shown near 0.1, {share(0.1)} are lesion; near 0.5, {share(0.5)}; near 0.9, {share(0.9)} "
            f"(ECE {calibration['ece']:.3f}, {calibration['ece_uncalibrated']:.3f} before). Uncertainty 1 - |2p-1| finds "
            f"the wrong pixels with AUROC {calibration['uncertainty_auroc']:.2f} (1 finds every error first, 0.5 is chance).")


# Labels of the explanation methods (the options a user picks), by method name.
METHOD_LABELS: dict[str, str] = {
    "confidence": "superpixel confidence",
    "saliency": "saliency (logits)",
    "saliency-sigmoid": "saliency (sigmoid)",
    "ig": "integrated gradients",
    "gradcam": "Grad-CAM and attention",
    "hirescam": "HiRes-CAM (every layer)",
    "gradcam++": "Grad-CAM++ (last decoder layer)",
    "scorecam": "Score-CAM (last decoder layer)",
}


def method_label(method: str) -> str:
    """The label of an explanation method; the method's own name when the table has none."""
    return METHOD_LABELS.get(method, method)


def legend_for(map_name: str) -> tuple[MapLegend, str | None]:
    """The legend of a map name and, for a per-layer map, its network layer.

    Raises:
        KeyError: no legend fits ``map_name`` (add one to ``LEGENDS``).
    """
    if map_name in LEGENDS:
        return LEGENDS[map_name], None
    key, _, layer = map_name.partition(" ")
    legend = LEGENDS.get(key)
    if legend is None or not legend.per_layer or not layer:
        raise KeyError(f"no legend for map '{map_name}'; expected one of {sorted(LEGENDS)} (per-layer ones as '<key> <layer>')")
    return legend, layer


def palette_colors(palette: str) -> tuple[list[float], list[tuple[float, float, float, float]]]:
    """The stop positions and RGBA colours of a palette, e.g. for a matplotlib or napari colour map."""
    stops = PALETTES[palette]
    return [p for p, _ in stops], [c for _, c in stops]


def palette_at(palette: str, positions: np.ndarray) -> np.ndarray:
    """RGBA colours (n, 4) of a palette at positions in [0, 1], linearly interpolated."""
    controls, colors = palette_colors(palette)
    positions = np.clip(np.asarray(positions, dtype=np.float64), 0.0, 1.0)
    colors = np.asarray(colors)
    return np.stack([np.interp(positions, controls, colors[:, channel]) for channel in range(4)], axis=-1)
