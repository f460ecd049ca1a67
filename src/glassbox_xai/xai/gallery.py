"""Galleries of a model's explanations over a folder with expert masks.

Every image gets its Dice and, for every chosen map (a method, on a layer for the
CAMs), the *share* of its absolute attribution that falls inside the expert mask.
Three groups come out of those numbers:

* ``failures``: the lowest Dice;
* ``good explanations``: the highest share of the first chosen map (it looks at the lesion);
* ``bad explanations``: the lowest share (it looks elsewhere).

Maps are computed on a copy at most ``side`` px a side (the model sees 128-256 px,
so nothing is lost); Dice is the model's at the photograph's own size, as ``glassbox
evaluate`` scores it. The scoring job keeps numbers only; :mod:`.gallery_sheets`
computes the maps again for the few images it draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generator

import cv2
import numpy as np

from ..data.io import read_image, read_mask
from ..data.layout import Sample, require_masks
from ..jobs import Progress, relay
from ..metrics import Confusion, scores
from .base import Explainer, TargetError
from .explain_files import to_working
from .faithfulness import mass_inside

GROUPS = ("failures", "good explanations", "bad explanations")
CAMS = ("gradcam", "hirescam", "gradcam++", "scorecam")
GALLERY_METHODS = (*CAMS, "saliency", "ig")
GALLERY_TARGETS = ("prediction", "truth")
DEFAULT_SIDE = 512


@dataclass(frozen=True)
class MapChoice:
    """One map of the gallery: ``method`` (one of :data:`GALLERY_METHODS`) and, for a CAM, its ``layer``."""

    method: str
    layer: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.layer}" if self.layer else self.method


def map_choices(model, methods: Sequence[str] = ("gradcam",), layers: Sequence[str] = ()) -> list[MapChoice]:
    """Every (method, layer) pair asked for: each CAM on each of ``layers`` (default the last
    wide decoder convolution), the other methods once.

    Raises:
        ValueError: an unknown method or a layer the model does not have.
    """
    from .layer_pass import default_layer

    unknown = [m for m in methods if m not in GALLERY_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown gallery method(s) {unknown or list(methods)}; expected some of {GALLERY_METHODS}")
    names = {layer.name for layer in model.layers}
    missing = [name for name in layers if name not in names]
    if missing:
        raise ValueError(f"model {model.name!r} has no layer {missing[0]!r}; expected a convolution, e.g. {default_layer(model)!r}")
    layers = list(layers) or [default_layer(model)]
    return [MapChoice(m, layer) for m in dict.fromkeys(methods) for layer in (layers if m in CAMS else [None])]


def attribution_share(values: np.ndarray, truth: np.ndarray) -> float:
    """Share of the map's absolute attribution inside the expert mask, in [0, 1]; NaN
    when the map holds no attribution at all (nothing to share)."""
    if not np.abs(values).sum() > 0:
        return math.nan
    return mass_inside(values, truth)


@dataclass
class CaseScore:
    """One image: its Dice, the share inside the expert mask of each map (NaN: no share), and
    the expert mask's share of the frame (a map inside a mask that fills the frame shares 1
    whatever it shows)."""

    id: str
    dice: float
    shares: dict[str, float]
    mask_area: float = math.nan

    def as_dict(self) -> dict:
        return {"id": self.id, "dice": self.dice, "shares": dict(self.shares), "mask_area": self.mask_area}


@dataclass
class Gallery:
    """The scores of a folder and its three groups (image ids, in the order shown)."""

    maps: list[str]
    target: str
    cases: list[CaseScore]
    groups: dict[str, list[str]]
    failures: list[dict[str, str]] = field(default_factory=list)

    def case(self, image_id: str) -> CaseScore:
        return next(c for c in self.cases if c.id == image_id)

    def as_dict(self) -> dict:
        """Plain dicts, lists, numbers and strings (what the model worker sends back)."""
        return {"maps": list(self.maps), "target": self.target, "cases": [c.as_dict() for c in self.cases],
                "groups": {k: list(v) for k, v in self.groups.items()}, "failures": list(self.failures)}


def select_groups(cases: Sequence[CaseScore], rank_by: str, n: int) -> dict[str, list[str]]:
    """The three groups: the ``n`` lowest Dice (worst first); the highest shares of map
    ``rank_by`` (best first) and the lowest (worst first), at most ``n`` each and never
    the same image in both. Images whose map holds no attribution are in neither."""
    failures = sorted(cases, key=lambda c: (c.dice, c.id))[:n]
    scored = sorted((c for c in cases if math.isfinite(c.shares.get(rank_by, math.nan))), key=lambda c: (-c.shares[rank_by], c.id))
    n_good = min(n, (len(scored) + 1) // 2)
    n_bad = min(n, len(scored) - n_good)
    bad = scored[len(scored) - n_bad :][::-1]
    return {"failures": [c.id for c in failures], "good explanations": [c.id for c in scored[:n_good]],
            "bad explanations": [c.id for c in bad]}


def case_maps(explainer: Explainer, image: np.ndarray, truth: np.ndarray, choices: Sequence[MapChoice],
              target: str = "prediction") -> Generator[Progress, None, dict[str, np.ndarray]]:
    """Every chosen map of one photograph, at its size; the gradient CAMs share one recorded pass.

    Raises:
        TargetError: the target region is empty (the model found no lesion).
    """
    from .integrated_gradients import integrated_gradients
    from .layer_pass import layer_pass
    from .panel import GRADIENT_CAMS
    from .saliency import saliency
    from .scorecam import scorecam

    x = explainer.prepare(image)
    tgt = explainer.target(image.shape[:2], x, target, truth)
    cam_layers = list(dict.fromkeys(c.layer for c in choices if c.method in GRADIENT_CAMS))
    recorded = layer_pass(explainer, x, tgt, cam_layers) if cam_layers else None
    maps = {}
    for choice in choices:
        if choice.method in GRADIENT_CAMS:
            maps[choice.name] = (yield from GRADIENT_CAMS[choice.method](explainer, image, recorded=recorded)).maps[choice.layer]
        elif choice.method == "scorecam":
            maps[choice.name] = (yield from scorecam(explainer, image, tgt, layer=choice.layer)).map
        elif choice.method == "saliency":
            maps[choice.name] = (yield from saliency(explainer, image, tgt)).map
        else:
            maps[choice.name] = (yield from integrated_gradients(explainer, image, tgt)).map
    return maps


def read_case(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """A sample's photograph and expert mask (checked to be the same size)."""
    image = read_image(sample.image)
    return image, read_mask(sample.mask, expected_shape=image.shape[:2])


def dice_of(segmenter, image: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """The model's Dice on one photograph at its own size, and its predicted mask."""
    mask = segmenter.predict(image).mask
    return scores(Confusion.from_masks(mask, truth))["dice"], mask


def shrink_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask at ``shape`` (rows, cols): a pixel is inside when at least half its area was."""
    if mask.shape == tuple(shape):
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) >= 0.5


def score_folder(segmenter, samples: Sequence[Sample], choices: Sequence[MapChoice], target: str = "prediction", n: int = 8,
                 side: int = DEFAULT_SIDE, dice: Mapping[str, float] | None = None) -> Generator[Progress, None, Gallery]:
    """Dice and attribution shares of every sample (each with its mask), and the three groups.

    Args:
        segmenter: the model (its card's threshold, flips and post-processing give the Dice).
        samples: photographs with their expert masks.
        choices: the maps (:func:`map_choices`); the first one ranks the explanations.
        target: what the maps explain: the predicted lesion or the expert mask.
        n: images per group.
        side: longest side of the copy the maps are computed on.
        dice: the Dice of each id when already known (the Compare widget's comparison);
            then the model is not run again for it.

    Images that cannot be read are listed in the gallery's ``failures``; an image whose
    target region is empty (no lesion predicted) keeps its Dice and has no shares.

    Raises:
        ValueError: no sample, no map, a sample without a mask, or an unknown target.
    """
    _check(samples, choices, target)
    explainer = Explainer.for_model(segmenter.bundle.model, segmenter.threshold)
    cases, failures = [], []
    for i, sample in enumerate(samples):
        yield Progress(i, len(samples), f"explaining {sample.id}")
        try:
            image, truth = read_case(sample)
            known = None if dice is None else dice.get(sample.id)
            value = known if known is not None else dice_of(segmenter, image, truth)[0]
        except (OSError, ValueError) as exc:
            failures.append({"id": sample.id, "message": str(exc)})
            continue
        small, small_truth = to_working(image, truth, side)
        del image, truth
        try:
            maps = yield from relay(case_maps(explainer, small, small_truth, choices, target),
                                    lambda p, i=i, name=sample.id: Progress(i, len(samples), f"explaining {name}: {p.message}"))
            shares = {name: attribution_share(m, small_truth) for name, m in maps.items()}
        except TargetError:
            shares = {c.name: math.nan for c in choices}
        cases.append(CaseScore(sample.id, float(value), shares, float(small_truth.mean())))
    yield Progress(len(samples), len(samples), "done")
    return Gallery([c.name for c in choices], target, cases, select_groups(cases, choices[0].name, n), failures)


def _check(samples: Sequence[Sample], choices: Sequence[MapChoice], target: str) -> None:
    if not samples:
        raise ValueError("no images to make galleries of; expected a folder of photographs with their masks")
    if not choices:
        raise ValueError("no map chosen for the galleries; expected at least one method")
    require_masks(samples, "galleries need every image's expert mask")
    if target not in GALLERY_TARGETS:
        raise ValueError(f"unknown gallery target {target!r}; expected one of {GALLERY_TARGETS}")


def variant_galleries(variants: Sequence, samples: Sequence[Sample], load: Callable[[str], object], method: str = "gradcam",
                      n: int = 5) -> Generator[Progress, None, dict[str, dict]]:
    """Galleries of ``method`` (on its default layer) for each compared variant
    (:class:`~glassbox_xai.comparison.VariantScores`), reusing their Dice; by variant name."""
    out = {}
    for v, variant in enumerate(variants):
        segmenter = load(variant.bundle)
        choices = map_choices(segmenter.bundle.model, [method])
        label = f"{variant.name} galleries ({v + 1}/{len(variants)})"
        job = score_folder(segmenter, samples, choices, n=n, dice=variant.dice)
        out[variant.name] = (yield from relay(job, lambda p: Progress(p.done, p.total, f"{label}: {p.message}"))).as_dict()
    return out
