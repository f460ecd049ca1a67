"""The whole explanation panel of one photograph: the chosen methods, their maps at
native resolution, and the numbers that say how far to trust them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Generator

import numpy as np

from ..inference import Prediction, Progress, Segmenter
from ..jobs import drive
from .base import Explainer
from .confidence import confidence_maps
from .faithfulness import Curves, deletion_insertion, faithfulness_numbers, mass_inside, randomisation_check
from .gradcam import gradcam
from .gradcam_plus import gradcam_plus
from .hirescam import hirescam
from .integrated_gradients import integrated_gradients
from .layer_pass import LayerPass, default_layer, layer_pass
from .saliency import saliency
from .scorecam import scorecam

COMPLETENESS_LIMIT = 0.01
GRADIENT_CAMS = {"gradcam": gradcam, "hirescam": hirescam, "gradcam++": gradcam_plus}

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
            sanity: bool = False, scorecam_budget: int = 32) -> Generator[Progress, None, Panel]:
    """Run ``methods`` on one photograph; yields progress per method, returns the :class:`Panel`.

    Grad-CAM and HiRes-CAM give a map for every convolution, Grad-CAM++ and Score-CAM
    one for the last wide decoder layer (:func:`~.layer_pass.default_layer`); the three
    gradient CAMs share one forward and backward pass. Every method but confidence gets
    ROAD deletion and insertion areas and those of a random pixel order (the CAMs on
    the default layer). With ``sanity``, every one of them also gets the model-randomisation
    check (its map again, on a freshly initialised model of the same architecture).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; expected some of {METHODS}")
    if truth is not None and truth.shape != image.shape[:2]:
        raise ValueError(f"ground truth {truth.shape} and image {image.shape[:2]} must have the same size")
    explainer = Explainer.for_model(segmenter.bundle.model, segmenter.threshold)  # its graphs outlive the request
    started = time.perf_counter()
    prediction = segmenter.predict(image)
    panel = Panel(prediction, seconds={"predict": time.perf_counter() - started})
    x = explainer.prepare(image)
    needs_target = any(m != "confidence" for m in methods)
    # One target object for every method: the explainer compiles its graphs once per target object.
    tgt = explainer.target(image.shape[:2], x, target, truth) if needs_target else None
    random = deletion_insertion(explainer, x, np.zeros(x.shape[1:3], np.float32), tgt) if needs_target else None
    cam_layer = default_layer(explainer.model) if any(m in GRADIENT_CAMS or m == "scorecam" for m in methods) else None
    recorded = None
    for step, method in enumerate(methods):
        yield Progress(step, len(methods), method)
        started = time.perf_counter()
        if method == "confidence":
            result = yield from confidence_maps(image, prediction.calibrated, n_segments, compactness)  # at the card's temperature
            panel.maps.update({"confidence": result.confidence, "superpixel confidence": result.superpixels})
        elif method in ("saliency", "saliency-sigmoid"):
            output = "sigmoid" if method.endswith("sigmoid") else "logits"
            result = yield from saliency(explainer, image, tgt, None, output)
            panel.maps[method] = result.map
            model_map = np.abs(result.gradient).max(axis=-1)
            panel.faithfulness[method] = _faithfulness(explainer, x, model_map, tgt, result.map, truth, random)
        elif method == "ig":
            result = yield from integrated_gradients(explainer, image, tgt, None, baseline, ig_steps)
            panel.maps["integrated gradients"] = result.map
            panel.faithfulness["ig"] = {
                **_faithfulness(explainer, x, result.attributions.sum(axis=-1), tgt, result.map, truth, random),
                **_completeness(result.completeness_error),
                "score": result.score,
                "baseline_score": result.baseline_score,
                "steps": result.steps,
                "baseline": result.baseline,
            }
        elif method in GRADIENT_CAMS:
            recorded = recorded or layer_pass(explainer, x, tgt)
            result = yield from GRADIENT_CAMS[method](explainer, image, recorded=recorded if method != "gradcam++" else _only(recorded, cam_layer))
            layers = [cam_layer] if method == "gradcam++" else list(result.maps)
            panel.maps.update({f"{method} {name}": result.maps[name] for name in layers})
            if method == "gradcam":
                panel.maps.update({f"attention {name}": m for name, m in result.attention.items()})
            if method != "gradcam++":
                panel.gradcam_stages = result.stages
            panel.faithfulness[method] = {**_faithfulness(explainer, x, _at_input(result.model_maps[cam_layer], x), tgt,
                                                          result.maps[cam_layer], truth, random), "layer": cam_layer}
        elif method == "scorecam":
            result = yield from scorecam(explainer, image, tgt, None, layer=cam_layer, budget=scorecam_budget)
            panel.maps[f"scorecam {cam_layer}"] = result.map
            panel.faithfulness[method] = {**_faithfulness(explainer, x, _at_input(result.model_map, x), tgt, result.map, truth, random),
                                          "layer": cam_layer, "channels": len(result.channels), "channels_total": result.channels_total,
                                          "budget_agreement": result.agreement}
        if sanity and method in panel.faithfulness:
            fixed = _native_target(target, prediction, truth)
            panel.faithfulness[method]["randomisation"] = _randomised(segmenter, image, fixed, method, cam_layer, ig_steps, scorecam_budget)
        panel.seconds[method] = time.perf_counter() - started
    yield Progress(len(methods), len(methods), "done")
    return panel


def _faithfulness(explainer: Explainer, x, model_map: np.ndarray, target, native_map: np.ndarray, truth, random: Curves) -> dict:
    curves = deletion_insertion(explainer, x, model_map, target)
    curves.random_deletion, curves.random_insertion = random.deletion, random.insertion
    out = faithfulness_numbers(curves)
    if truth is not None:
        out["mass_inside_truth"] = mass_inside(native_map, truth)
    return out


def _only(recorded: LayerPass, layer: str) -> LayerPass:
    """The recorded pass restricted to one layer (Grad-CAM++ is shown for one layer only)."""
    return replace(recorded, activations={layer: recorded.activations[layer]}, gradients={layer: recorded.gradients[layer]})


def _at_input(layer_map: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A layer-resolution map resized (bilinear) to the model input's (S, S)."""
    import cv2

    return cv2.resize(layer_map, (x.shape[2], x.shape[1]), interpolation=cv2.INTER_LINEAR)


def _completeness(error: float) -> dict:
    """The integrated-gradients completeness error, with a warning and a remedy above 1%."""
    out = {"completeness_error": error}
    if error > COMPLETENESS_LIMIT:
        out["completeness_warning"] = (f"completeness error {error:.1%} is above {COMPLETENESS_LIMIT:.0%}: the attributions do not add up "
                                       f"to the score difference; use more steps (--steps 128) or another baseline (--baseline blur)")
    return out


def _native_target(target, prediction: Prediction, truth) -> np.ndarray:
    """The target as a fixed native-resolution mask, so a second model explains the same pixels."""
    if isinstance(target, np.ndarray):
        return target
    return {"prediction": prediction.mask, "background": ~prediction.mask, "truth": truth}[target]


def _randomised(segmenter: Segmenter, image: np.ndarray, target: np.ndarray, method: str, cam_layer: str | None, ig_steps: int,
                budget: int) -> dict:
    """Spearman correlation of ``method``'s map on the model and on a freshly initialised one, and whether it passed."""
    from ..model.attention_unet import build_attention_unet

    random_model = build_attention_unet(segmenter.bundle.config)

    def one_map(model) -> np.ndarray:
        return _map_of(method, Explainer(model, segmenter.threshold), image, target, cam_layer, ig_steps, budget)

    check = randomisation_check(one_map, segmenter.bundle.model, random_model)
    return {"spearman": check.spearman, "passed": check.passed}


def _map_of(method: str, explainer: Explainer, image: np.ndarray, target: np.ndarray, cam_layer: str | None, ig_steps: int,
            budget: int) -> np.ndarray:
    """The native-resolution map one attribution method gives (the CAMs on ``cam_layer``; IG from a black baseline)."""
    if method in ("saliency", "saliency-sigmoid"):
        output = "sigmoid" if method.endswith("sigmoid") else "logits"
        return drive(saliency(explainer, image, target, None, output)).map
    if method == "ig":
        return drive(integrated_gradients(explainer, image, target, None, "black", ig_steps)).map
    if method == "scorecam":
        return drive(scorecam(explainer, image, target, None, layer=cam_layer, budget=budget)).map
    return drive(GRADIENT_CAMS[method](explainer, image, target, None, layers=[cam_layer])).maps[cam_layer]
