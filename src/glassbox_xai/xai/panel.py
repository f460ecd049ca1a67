"""The whole explanation panel of one photograph: the chosen methods, their maps at
native resolution, and the numbers that say how far to trust them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generator

import numpy as np

from ..inference import Prediction, Progress, Segmenter
from .base import Explainer
from .confidence import confidence_maps
from .faithfulness import deletion_insertion, mass_inside, randomisation_check
from .gradcam import gradcam
from .integrated_gradients import integrated_gradients
from .saliency import saliency

from . import METHODS


@dataclass
class Panel:
    """Maps by name (each (rows, cols) float32 at native resolution), Grad-CAM stages,
    faithfulness numbers by method, and seconds spent per method."""

    prediction: Prediction
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    gradcam_stages: dict[str, list[str]] = field(default_factory=dict)
    faithfulness: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def explain(segmenter: Segmenter, image: np.ndarray, methods=METHODS, target="prediction", truth: np.ndarray | None = None,
            ig_steps: int = 32, baseline: str = "black", n_segments: int = 200, compactness: float = 10.0,
            sanity: bool = False) -> Generator[Progress, None, Panel]:
    """Run ``methods`` on one photograph; yields progress per method, returns the :class:`Panel`.

    With ``sanity``, saliency also gets the model-randomisation check (one more
    gradient pass on a freshly initialised model of the same architecture).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {METHODS}")
    if truth is not None and truth.shape != image.shape[:2]:
        raise ValueError(f"ground truth {truth.shape} and image {image.shape[:2]} must have the same size")
    explainer = Explainer(segmenter.bundle.model, segmenter.threshold)
    started = time.perf_counter()
    prediction = segmenter.predict(image)
    panel = Panel(prediction, seconds={"predict": time.perf_counter() - started})
    x = explainer.prepare(image)
    needs_target = any(m != "confidence" for m in methods)
    tgt = explainer.target(image.shape[:2], x, target, truth) if needs_target else None
    for step, method in enumerate(methods):
        yield Progress(step, len(methods), method)
        started = time.perf_counter()
        if method == "confidence":
            result = yield from confidence_maps(image, prediction.probabilities, n_segments, compactness)
            panel.maps.update({"confidence": result.confidence, "superpixel confidence": result.superpixels})
        elif method in ("saliency", "saliency-sigmoid"):
            output = "sigmoid" if method.endswith("sigmoid") else "logits"
            result = yield from saliency(explainer, image, target, truth, output)
            panel.maps[method] = result.map
            model_map = np.abs(result.gradient).max(axis=-1)
            panel.faithfulness[method] = _faithfulness(explainer, x, model_map, tgt, result.map, truth)
            if sanity:
                fixed = _native_target(target, prediction, truth)
                panel.faithfulness[method]["randomisation"] = _randomised(segmenter, image, fixed, output)
        elif method == "ig":
            result = yield from integrated_gradients(explainer, image, target, truth, baseline, ig_steps)
            panel.maps["integrated gradients"] = result.map
            panel.faithfulness["ig"] = {
                **_faithfulness(explainer, x, result.attributions.sum(axis=-1), tgt, result.map, truth),
                "completeness_error": result.completeness_error,
                "score": result.score,
                "baseline_score": result.baseline_score,
                "steps": result.steps,
                "baseline": result.baseline,
            }
        elif method == "gradcam":
            result = yield from gradcam(explainer, image, target, truth)
            panel.maps.update({f"gradcam {name}": m for name, m in result.maps.items()})
            panel.maps.update({f"attention {name}": m for name, m in result.attention.items()})
            panel.gradcam_stages = result.stages
        panel.seconds[method] = time.perf_counter() - started
    yield Progress(len(methods), len(methods), "done")
    return panel


def _faithfulness(explainer: Explainer, x, model_map: np.ndarray, target, native_map: np.ndarray, truth) -> dict:
    curves = deletion_insertion(explainer, x, model_map, target, steps=10)
    out = {"deletion_auc": curves.deletion_auc, "insertion_auc": curves.insertion_auc}
    if truth is not None:
        out["mass_inside_truth"] = mass_inside(native_map, truth)
    return out


def _native_target(target, prediction: Prediction, truth) -> np.ndarray:
    """The target as a fixed native-resolution mask, so a second model explains the same pixels."""
    if isinstance(target, np.ndarray):
        return target
    return {"prediction": prediction.mask, "background": ~prediction.mask, "truth": truth}[target]


def _randomised(segmenter: Segmenter, image: np.ndarray, target: np.ndarray, output: str) -> dict:
    from ..model.attention_unet import build_attention_unet
    from .saliency import compute_saliency

    random_model = build_attention_unet(segmenter.bundle.config)

    def method(model) -> np.ndarray:
        return compute_saliency(Explainer(model, segmenter.threshold), image, target=target, output=output).map

    check = randomisation_check(method, segmenter.bundle.model, random_model)
    return {"spearman": check.spearman, "passed": check.passed}
