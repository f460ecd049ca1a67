"""Scoring a model, or a folder of existing predictions, against expert masks."""

from __future__ import annotations

from pathlib import Path
from typing import Generator

from .data.io import MaskError, read_mask
from .data.layout import MASK_SUFFIX, NoImagesError, Sample
from .inference import Failure, Progress, Segmenter
from .metrics import Confusion, Evaluation

EvalJob = Generator[Progress | Failure, None, Evaluation]


def evaluate_model(segmenter: Segmenter, samples: list[Sample]) -> EvalJob:
    """Segment every sample and score it against its mask; yields progress and failures."""
    missing = [s for s in samples if s.mask is None]
    if missing:
        raise MaskError(f"{len(missing)} image(s) have no mask, e.g. {missing[0].image}")
    evaluation = Evaluation([], [])
    for item in segmenter.predict_samples(samples):
        if isinstance(item, (Progress, Failure)):
            yield item
            continue
        sample, prediction = item
        truth = read_mask(sample.mask, expected_shape=prediction.shape)
        evaluation.ids.append(sample.id)
        evaluation.confusions.append(Confusion.from_masks(prediction.mask, truth))
    return evaluation


def evaluate_predictions(predictions_dir: str | Path, masks_dir: str | Path) -> EvalJob:
    """Score ``<id>_segmentation.png`` predictions against the masks of the same name.

    Every mask must have its prediction; predictions are read as the ISIC scorer
    reads them (8-bit, > 128 is lesion).
    """
    predictions_dir, masks_dir = Path(predictions_dir), Path(masks_dir)
    for folder in (predictions_dir, masks_dir):
        if not folder.is_dir():
            raise NoImagesError(f"{folder} is not a folder")
    masks = sorted(masks_dir.glob(f"*{MASK_SUFFIX}.png"))
    if not masks:
        raise NoImagesError(f"no masks named <id>{MASK_SUFFIX}.png in {masks_dir}")
    missing = [m.name for m in masks if not (predictions_dir / m.name).is_file()]
    if missing:
        raise MaskError(f"{len(missing)} mask(s) have no prediction in {predictions_dir}, e.g. {missing[0]}")
    evaluation = Evaluation([], [])
    for done, mask_path in enumerate(masks, start=1):
        truth = read_mask(mask_path)
        prediction = read_mask(predictions_dir / mask_path.name, expected_shape=truth.shape, strict=False)
        evaluation.ids.append(mask_path.name[: -len(MASK_SUFFIX) - 4])
        evaluation.confusions.append(Confusion.from_masks(prediction, truth))
        yield Progress(done, len(masks), mask_path.name)
    return evaluation
