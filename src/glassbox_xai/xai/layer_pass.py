"""One forward and one backward pass that records, for every chosen layer, its activation
and the gradient of the target score with respect to it.

Grad-CAM, HiRes-CAM and Grad-CAM++ are different reductions of the same two arrays,
so the panel runs this pass once and hands it to every gradient-based CAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.attention_unet import layers_by_stage
from .base import Explainer
from .targets import TargetScore


@dataclass
class LayerPass:
    """``activations`` and ``gradients``: layer name -> (h, w, C) float32 of the first
    input; ``attention``: gate name -> (h, w) coefficients (segmentation model only);
    ``stages``: stage -> layer names in network order; ``score``: the target's score."""

    activations: dict[str, np.ndarray]
    gradients: dict[str, np.ndarray]
    attention: dict[str, np.ndarray]
    stages: dict[str, list[str]]
    score: float
    target: str


def conv_layers(model) -> dict[str, list[str]]:
    """Convolutions grouped by stage; a model without stage names gets one group ``layers``."""
    stages = layers_by_stage(model)
    if any(stages.values()):
        return stages
    import keras

    return {"layers": [l.name for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]}


def default_layer(model) -> str:
    """The layer a single-layer CAM explains by default: the last convolution with more
    than one channel (for the U-Net, the last decoder convolution before the 1x1 output)."""
    names = [n for group in conv_layers(model).values() for n in group]
    wide = [n for n in names if model.get_layer(n).output.shape[-1] > 1]
    if not wide:
        raise ValueError(f"model {model.name!r} has no convolution with more than one channel to explain")
    return wide[-1]


def _probe_model(explainer: Explainer, names: list[str]):
    """One model sharing the explained model's layers, returning every listed layer's
    output, the attention coefficients and the model output (built once per explainer)."""
    import keras

    cached = getattr(explainer, "_gradcam_probe", None)
    if cached is not None and cached[0] == names:
        return cached[1]
    model = explainer.model
    attention = {l.name: l.output for l in model.layers if l.name.endswith("_coefficients")}
    probe = keras.Model(model.input, {"layers": {n: model.get_layer(n).output for n in names}, "attention": attention, "logits": model.output})
    explainer._gradcam_probe = (names, probe)
    return probe


def layer_pass(explainer: Explainer, x: np.ndarray, target: TargetScore, layers: list[str] | None = None) -> LayerPass:
    """Activations and gradients of ``layers`` (default: every convolution) for a (1, S, S, C) input."""
    tf = explainer.tf
    stages = conv_layers(explainer.model)
    names = list(layers) if layers else [n for group in stages.values() for n in group]
    probe = _probe_model(explainer, names)
    with tf.GradientTape() as tape:
        out = probe(tf.convert_to_tensor(np.asarray(x, np.float32)), training=False)
        acts = [out["layers"][n] for n in names]
        tape.watch(acts)
        score = target.score(out["logits"], "logits")
    grads = tape.gradient(score, acts)
    attention = {name.replace("_coefficients", ""): np.asarray(v)[0, ..., 0] for name, v in out["attention"].items()}
    grouped = {stage: [n for n in group if n in names] for stage, group in stages.items()}
    return LayerPass({n: a.numpy()[0] for n, a in zip(names, acts)}, {n: g.numpy()[0] for n, g in zip(names, grads)},
                     dict(sorted(attention.items())), grouped, float(score.numpy()[0]), target.name)


def scaled(raw: np.ndarray) -> np.ndarray:
    """A non-negative map divided by its own maximum (left as is when the maximum is 0)."""
    peak = float(raw.max())
    return (raw / peak if peak > 0 else raw).astype(np.float32)
