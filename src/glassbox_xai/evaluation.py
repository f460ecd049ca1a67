"""Scoring a model, or a folder of existing predictions, against expert masks."""

from __future__ import annotations

from pathlib import Path
from typing import Generator

from .data.io import MaskError, read_mask
from .data.layout import MASK_SUFFIX, NoImagesError, Sample, require_masks
from .calibration import CalibrationCounts
from .inference import Failure, Progress, Segmenter
from .metrics import Confusion, Evaluation

EvalJob = Generator[Progress | Failure, None, Evaluation]


def evaluate_model(segmenter: Segmenter, samples: list[Sample]) -> EvalJob:
    """Segment every sample and score it against its mask; yields progress and failures.

    The result also holds the pixel calibration counts of the model's native-resolution
    logits (see :mod:`glassbox_xai.calibration`), read at the segmenter's temperature."""
    require_masks(samples, "an evaluation needs every image's expert mask")
    evaluation = Evaluation([], [], CalibrationCounts(), getattr(segmenter, "temperature", 1.0))
    for item in segmenter.predict_samples(samples):
        if isinstance(item, (Progress, Failure)):
            yield item
            continue
        sample, prediction = item
        try:
            truth = read_mask(sample.mask, expected_shape=prediction.shape)
        except MaskError as exc:  # one bad mask is reported and skipped; the others are still scored
            yield Failure(sample, str(exc))
            continue
        evaluation.ids.append(sample.id)
        evaluation.confusions.append(Confusion.from_masks(prediction.mask, truth))
        evaluation.calibration.add(prediction.logits, truth, prediction.mask)
    return evaluation


def evaluate_predictions(predictions_dir: str | Path, masks_dir: str | Path) -> EvalJob:
    """Score ``<id>_segmentation.png`` predictions against the masks of the same name.

    Predictions are read as the ISIC scorer reads them (8-bit, > 128 is lesion). A
    mask without its prediction, an unreadable or non-binary mask, or a prediction of
    another size is yielded as a :class:`Failure` (its ``sample.image`` is the
    prediction file) and the others are still scored.

    Raises:
        NoImagesError: a folder is missing or holds no masks.
        MaskError: no mask has its prediction (the folders do not belong together).
    """
    predictions_dir, masks_dir = Path(predictions_dir), Path(masks_dir)
    for folder in (predictions_dir, masks_dir):
        if not folder.is_dir():
            raise NoImagesError(f"{folder} is not a folder")
    masks = sorted(masks_dir.glob(f"*{MASK_SUFFIX}.png"))
    if not masks:
        raise NoImagesError(f"no masks named <id>{MASK_SUFFIX}.png in {masks_dir}")
    missing = [m.name for m in masks if not (predictions_dir / m.name).is_file()]
    if len(missing) == len(masks):
        raise MaskError(f"{len(missing)} mask(s) have no prediction in {predictions_dir}, e.g. {missing[0]}")
    evaluation = Evaluation([], [])
    for done, mask_path in enumerate(masks, start=1):
        sample = Sample(mask_path.name[: -len(MASK_SUFFIX) - 4], predictions_dir / mask_path.name, mask_path)
        try:
            if mask_path.name in missing:
                raise MaskError(f"mask {mask_path} has no prediction {sample.image}")
            truth = read_mask(mask_path)
            prediction = read_mask(sample.image, expected_shape=truth.shape, strict=False)
        except MaskError as exc:
            yield Failure(sample, str(exc))
        else:
            evaluation.ids.append(sample.id)
            evaluation.confusions.append(Confusion.from_masks(prediction, truth))
        yield Progress(done, len(masks), mask_path.name)
    return evaluation
