"""Grad-CAM (Selvaraju et al. 2017) for every convolutional layer, grouped by stage,
from ONE forward and ONE backward pass, plus the attention gates' own coefficient maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator

import numpy as np

from ..inference import Progress, run_to_end
from ..model.attention_unet import layers_by_stage
from .base import Explainer, native


@dataclass
class GradCAMResult:
    """``maps``: layer name -> Grad-CAM in [0, 1] (each divided by its own maximum) at
    native resolution; ``stages``: stage -> layer names in network order;
    ``attention``: ``attention{i}`` -> gate coefficients in [0, 1] at native resolution."""

    maps: dict[str, np.ndarray]
    stages: dict[str, list[str]]
    attention: dict[str, np.ndarray]
    score: float
    target: str


def cam(activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Grad-CAM of one layer: ReLU of the activation channels weighted by their mean gradient."""
    weights = gradient.mean(axis=(0, 1))
    return np.maximum(np.tensordot(activation, weights, axes=([-1], [0])), 0.0).astype(np.float32)


def _probe_model(explainer: Explainer, names: list[str]):
    """One model sharing the explained model's layers, returning every listed layer's
    output, the attention coefficients and the logits (built once per explainer)."""
    import keras

    cached = getattr(explainer, "_gradcam_probe", None)
    if cached is not None and cached[0] == names:
        return cached[1]
    model = explainer.model
    attention = {l.name: l.output for l in model.layers if l.name.endswith("_coefficients")}
    probe = keras.Model(model.input, {"layers": {n: model.get_layer(n).output for n in names}, "attention": attention, "logits": model.output})
    explainer._gradcam_probe = (names, probe)
    return probe


def gradcam(explainer: Explainer, image: np.ndarray, target="prediction", truth=None, layers: list[str] | None = None) -> Generator[Progress, None, GradCAMResult]:
    """Grad-CAM of every convolution (or of ``layers``) for the target's mean logit."""
    tf = explainer.tf
    stages = layers_by_stage(explainer.model)
    names = layers or [n for group in stages.values() for n in group]
    yield Progress(0, 2, "Grad-CAM: forward and backward pass")
    x = explainer.prepare(image)
    tgt = explainer.target(image.shape[:2], x, target, truth)
    probe = _probe_model(explainer, names)
    with tf.GradientTape() as tape:
        out = probe(tf.convert_to_tensor(x), training=False)
        acts = [out["layers"][n] for n in names]
        tape.watch(acts)
        score = explainer._score(out["logits"], tgt, "logits")
    grads = tape.gradient(score, acts)
    yield Progress(1, 2, "Grad-CAM: maps")
    maps = {}
    for name, act, grad in zip(names, acts, grads):
        raw = cam(act.numpy()[0], grad.numpy()[0])
        peak = float(raw.max())
        maps[name] = native(raw / peak if peak > 0 else raw, image.shape[:2])
    attention = {name.replace("_coefficients", ""): native(np.asarray(v)[0, ..., 0], image.shape[:2]) for name, v in out["attention"].items()}
    yield Progress(2, 2, "Grad-CAM: done")
    grouped = {stage: [n for n in group if n in maps] for stage, group in stages.items()}
    return GradCAMResult(maps, grouped, dict(sorted(attention.items())), float(score.numpy()[0]), tgt.name)


def compute_gradcam(explainer: Explainer, image: np.ndarray, **kwargs) -> GradCAMResult:
    """Synchronous :func:`gradcam`."""
    return run_to_end(gradcam(explainer, image, **kwargs))[-1]
