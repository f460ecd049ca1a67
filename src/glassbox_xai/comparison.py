"""Model variants side by side over a set of images with expert masks.

For each variant: the macro (challenge) metrics, the pooled confusion counts, the
Dice of every image, and the typical, best and worst images by Dice. Headless
and plain-data in, plain-data out, so the model worker runs it for the napari
Compare widget and scripts can run it with :func:`~glassbox_xai.jobs.drive`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .data.layout import Sample, require_masks
from .evaluation import evaluate_model
from .inference import Failure
from .jobs import Progress, relay
from .metrics import Evaluation, macro_average, scores
from .report import review_picks

PICK_KINDS = ("best", "typical", "worst")


@dataclass
class VariantScores:
    """One variant's results over a set of images (every number plain Python)."""

    name: str
    bundle: str
    metrics: dict[str, float]
    pooled: dict[str, float]
    confusion: dict[str, int]
    dice: dict[str, float]
    picks: dict[str, list[str]]
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.dice)

    def as_dict(self) -> dict:
        """Plain dicts, lists, numbers and strings (what the model worker sends back)."""
        return {"name": self.name, "bundle": self.bundle, "n_images": self.n_images, "metrics": self.metrics, "pooled": self.pooled,
                "confusion": self.confusion, "dice": self.dice, "picks": self.picks, "failures": self.failures}


def variant_scores(name: str, bundle: str | Path, evaluation: Evaluation, failures: Sequence[Failure] = (), n_picks: int = 3) -> VariantScores:
    """Summarise one variant's :class:`~glassbox_xai.metrics.Evaluation` (at least one image scored)."""
    per_image = evaluation.per_image
    picks = review_picks(evaluation, n_picks)
    return VariantScores(
        name=name,
        bundle=str(bundle),
        metrics=macro_average(per_image),
        pooled=scores(evaluation.pooled),
        confusion=evaluation.pooled.as_dict(),
        dice={image_id: float(row["dice"]) for image_id, row in zip(evaluation.ids, per_image)},
        picks={kind: [evaluation.ids[i] for i in picks[kind]] for kind in PICK_KINDS},
        failures=[{"id": f.sample.id, "message": f.message} for f in failures],
    )


def compare_variants(bundles: Sequence[tuple[str, str | Path]], samples: Sequence[Sample], n_picks: int = 3,
                     load: Callable[[str], object] | None = None) -> Generator[Progress, None, list[VariantScores]]:
    """Score every named bundle on ``samples`` (each with its mask), one variant after another.

    Args:
        bundles: ``(name, bundle folder)`` pairs, in the order of the result.
        samples: images with masks, e.g. ``discover(folder, require_masks=True)``.
        n_picks: how many typical, best and worst images to name per variant.
        load: bundle folder -> :class:`~glassbox_xai.inference.Segmenter` (default
            ``Segmenter.from_bundle``; the model worker passes its cache).

    Yields progress over all variants; images that cannot be read are skipped and
    listed in each variant's ``failures``.

    Raises:
        ValueError: no bundle or no sample given.
        MaskError: a sample has no mask (checked before any model loads).
        ImageReadError: no image at all could be read.
    """
    if not bundles:
        raise ValueError("no model bundle to compare; expected at least one (name, bundle folder)")
    if not samples:
        raise ValueError("no images to compare the models on")
    require_masks(samples, "a comparison needs every image's expert mask")
    if load is None:
        from .inference import Segmenter

        load = Segmenter.from_bundle
    total = len(bundles) * len(samples)
    results = []
    for v, (name, bundle) in enumerate(bundles):
        yield Progress(v * len(samples), total, f"{name}: loading the model")
        evaluation, failures = yield from evaluate_keeping_failures(load(str(bundle)), samples, name, v * len(samples), total)
        if not evaluation.ids:
            from .data.io import ImageReadError

            raise ImageReadError(f"none of the {len(samples)} images could be read, e.g. {failures[0].sample.image}: {failures[0].message}")
        results.append(variant_scores(name, bundle, evaluation, failures, n_picks))
    yield Progress(total, total, "done")
    return results


def evaluate_keeping_failures(segmenter, samples: Sequence[Sample], name: str, offset: int, total: int) -> Generator[Progress, None, tuple[Evaluation, list[Failure]]]:
    """``evaluate_model`` with its progress shifted into the whole comparison, and its failures kept."""
    failures: list[Failure] = []

    def skipped(failure: Failure) -> Progress:
        failures.append(failure)
        return Progress(offset, total, f"{name}: skipped {failure.sample.id} ({failure.message.splitlines()[0]})")

    evaluation = yield from relay(evaluate_model(segmenter, list(samples)),
                                  lambda p: Progress(offset + p.done, total, f"{name}: {p.message}"), skipped)
    return evaluation, failures
