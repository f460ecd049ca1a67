"""What one worker does with a chunk of images: read by path, run the model, write the
outputs itself, and hand back small records (never arrays) for the client to collect.

The same functions run in-process and on Dask workers, so both give the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.layout import Sample
from ..inference import Failure, Progress
from .resume import mask_is_complete

KINDS = ("predict", "evaluate", "rank")
EXPECTED = (ValueError, OSError)  # ImageReadError and MaskError are ValueErrors


@dataclass(frozen=True)
class ModelSpec:
    """How to load the segmenter: a bundle folder and the inference options (picklable)."""

    bundle: str
    threshold: float | None = None
    batch_size: int = 4
    tta: bool | None = None
    postprocess: bool | None = None

    def load(self):
        """The :class:`~glassbox_xai.inference.Segmenter` (imports TensorFlow)."""
        from ..tf_import import import_tensorflow

        import_tensorflow()
        from ..inference import Segmenter

        return Segmenter.from_bundle(self.bundle, threshold=self.threshold, batch_size=self.batch_size, tta=self.tta, postprocess=self.postprocess)


@dataclass(frozen=True)
class Item:
    """One image of a job: its id, its path, its expert mask (evaluate) and its output mask (predict)."""

    id: str
    image: str
    mask: str | None = None
    output: str | None = None

    def sample(self) -> Sample:
        return Sample(self.id, Path(self.image), Path(self.mask) if self.mask else None)


@dataclass(frozen=True)
class Job:
    """A batch job: its kind, whether complete masks are kept, and Monte Carlo passes (rank)."""

    kind: str
    resume: bool = False
    passes: int = 8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown batch job {self.kind!r}; expected one of {', '.join(KINDS)}")


def run_chunk(segmenter, job: Job, items: list[Item]) -> list[dict]:
    """Process ``items`` with ``segmenter``; one record per item (``status`` is
    ``written``, ``kept``, ``scored`` or ``failed`` with a ``message``)."""
    if job.kind == "rank":
        return [_guarded(item, _rank_one, segmenter, job.passes) for item in items]
    records, todo = [], []
    for item in items:
        if job.kind == "predict" and job.resume and mask_is_complete(item.output, item.image):
            records.append(_record(item, "kept"))
        else:
            todo.append(item)
    by_id = {item.id: item for item in todo}
    for result in segmenter.predict_samples([item.sample() for item in todo]):
        if isinstance(result, Progress):
            continue
        if isinstance(result, Failure):  # an unreadable image
            records.append(_record(by_id[result.sample.id], "failed", result.message))
            continue
        sample, prediction = result
        writer = _write_mask if job.kind == "predict" else _score
        records.append(_guarded(by_id[sample.id], writer, prediction))
    return records


def _guarded(item: Item, work, *args) -> dict:
    try:
        return work(item, *args)
    except EXPECTED as exc:
        return _record(item, "failed", str(exc) or type(exc).__name__)


def _write_mask(item: Item, prediction) -> dict:
    from ..data.io import write_mask

    write_mask(item.output, prediction.mask)
    return _record(item, "written")


def _score(item: Item, prediction) -> dict:
    from ..data.io import read_mask
    from ..metrics import Confusion

    truth = read_mask(item.mask, expected_shape=prediction.shape)
    return _record(item, "scored", **Confusion.from_masks(prediction.mask, truth).as_dict())


def _rank_one(item: Item, segmenter, passes: int) -> dict:
    from ..data.io import read_image
    from ..data.resize import to_model_input
    from ..hitl.uncertainty import boundary_uncertainty, mc_dropout_disagreement

    image = read_image(item.image)
    prediction = segmenter.predict(image)
    x = to_model_input(image, segmenter.input_size)[None]
    return _record(item, "scored",
                   boundary=boundary_uncertainty(prediction.probabilities, segmenter.threshold),
                   mc_dropout=mc_dropout_disagreement(segmenter.bundle.model, x, passes, segmenter.threshold))


def _record(item: Item, status: str, message: str = "", **values) -> dict:
    return {"id": item.id, "image": item.image, "status": status, "message": message, **values}
