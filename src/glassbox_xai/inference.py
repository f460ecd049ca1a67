"""From a photograph to logits, probabilities and a mask at its native resolution.

Inputs and outputs are plain arrays, paths and small dicts, so the napari side can
call this in a worker process. Long jobs are generators that yield progress and
return the result; :func:`glassbox_xai.jobs.drive` runs one to completion for scripts.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator, Iterable, Iterator, TypeVar

import numpy as np

from .calibration import temper
from .data.io import read_image
from .data.layout import Sample
from .data.resize import to_model_input, to_native
from .jobs import Progress  # noqa: F401  (jobs here yield it; re-exported)
from .refine import guided_refine

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Prediction:
    """One image's result; every map has the photograph's (rows, columns).

    ``probabilities`` are the model's own (``mask`` is where they exceed ``threshold``);
    :attr:`calibrated` are the same at the model card's ``temperature``, for the maps
    that report a probability or a confidence."""

    logits: np.ndarray
    probabilities: np.ndarray
    mask: np.ndarray
    threshold: float
    temperature: float = 1.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    @property
    def calibrated(self) -> np.ndarray:
        """The lesion probabilities at ``temperature`` (the same array when it is 1); a
        temperature is monotone, so they exceed :func:`~glassbox_xai.calibration.calibrated_threshold`
        where ``mask`` is set (before post-processing; up to float rounding at the boundary)."""
        return temper(self.probabilities, self.temperature)


@dataclass(frozen=True)
class Failure:
    """An image that could not be processed, with the reason (the job goes on)."""

    sample: Sample
    message: str


def compute_device() -> str:
    """The device TensorFlow will run the model on, e.g. ``"GPU:0 (NVIDIA H100)"`` or ``"CPU"``."""
    from .tf_import import import_tensorflow

    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 ({details.get('device_name', gpus[0].name)})"


def _threshold(bundle, threshold: float | None) -> float:
    value = float(bundle.card.threshold if threshold is None else threshold)
    if not 0.0 < value < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {value}")
    return value


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    x = np.asarray(x, dtype=np.float32)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


class Segmenter:
    """Runs one loaded model bundle on photographs (on the GPU when TensorFlow sees one).

    Args:
        bundle: a loaded :class:`~glassbox_xai.model.bundle.Bundle`.
        threshold: probability threshold (default: the model card's).
        batch_size: images per model call over folders.
        tta: test-time augmentation, averaged in logit space: ``False``; ``True`` or
            ``"flips"``, the image and its horizontal, vertical and double flips (one
            model call of 4x the batch); ``"d4"``, those and the four transposed ones
            (all eight flips and 90-degree rotations, 8x). Default: the card's.
        postprocess: keep the largest connected lesion and fill its holes in the
            mask (probabilities and logits are left as the model gave them).
            Default: the card's.
        refine: refine the native-resolution probabilities with the photograph as a
            guide (:mod:`glassbox_xai.refine`), so the boundary follows the photograph's
            edges; the mask is thresholded from the refined map, the logits stay as the
            model gave them. Default: the card's.
        temperature: the logits' temperature for :attr:`Prediction.calibrated`; it never
            changes the mask, which keeps ``threshold`` on the model's own probabilities.
            Default: the card's ``calibration`` (1 when the card has none).
    """

    def __init__(self, bundle, threshold: float | None = None, batch_size: int = 4, tta: bool | str | None = None, postprocess: bool | None = None,
                 refine: bool | None = None, temperature: float | None = None) -> None:
        self.bundle = bundle
        self.threshold = _threshold(bundle, threshold)
        self.batch_size = max(1, int(batch_size))
        defaults = bundle.card.inference or {}
        self.tta = tta_mode(defaults.get("tta", False) if tta is None else tta)
        self.postprocess = bool(defaults.get("postprocess", False) if postprocess is None else postprocess)
        self.refine = bool(defaults.get("refine", False) if refine is None else refine)
        self.temperature = float((bundle.card.calibration or {}).get("temperature", 1.0) if temperature is None else temperature)
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.device = compute_device()
        self._shared: dict[str, object] = {}  # built on first use, shared with at_threshold's copies
        log.info("model %s runs on %s", bundle.path, self.device)

    @classmethod
    def from_bundle(cls, path: str | Path, **kwargs) -> "Segmenter":
        """Load the bundle at ``path`` (hash-checked, safe mode) and wrap it."""
        from .model.bundle import load_bundle

        return cls(load_bundle(path), **kwargs)

    def at_threshold(self, threshold: float | None) -> "Segmenter":
        """This segmenter at another threshold (None: the card's), sharing its loaded model and
        its :attr:`forward` model, which whichever of them segments first builds, once for all."""
        other = copy.copy(self)  # shallow: the bundle and the _shared holder are the same objects
        other.threshold = _threshold(self.bundle, threshold)
        return other

    @property
    def input_size(self) -> int:
        return self.bundle.config.input_size

    @property
    def forward(self):
        """The model that computes the logits: the bundle's with its batch normalisation folded
        into the convolutions (:mod:`glassbox_xai.model.fold`; the same function, a fifth
        faster on a CPU). Built on first use (explanations use ``bundle.model``, so a worker
        that only explains never builds it), and shared with :meth:`at_threshold`'s copies."""
        if "forward" not in self._shared:
            from .model.fold import fold_batchnorm

            self._shared["forward"] = fold_batchnorm(self.bundle.model, self.bundle.config)
        return self._shared["forward"]

    def predict(self, image: np.ndarray | str | Path) -> Prediction:
        """Segment one photograph given as an (H, W, 3) uint8 array or a path."""
        if not isinstance(image, np.ndarray):
            image = read_image(image)
        logits = self.model_logits(to_model_input(image, self.input_size)[None])[0]
        return self._to_prediction(logits, image.shape[:2], image)

    def model_logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits at model resolution for a (N, size, size, 3) float batch in [0, 1]."""
        batch = np.asarray(batch, dtype=np.float32)
        if not self.tta:
            return np.asarray(self.forward.predict_on_batch(batch), dtype=np.float32)[..., 0]
        views = TTA_VIEWS[tta_mode(self.tta)]
        out = np.asarray(self.forward.predict_on_batch(np.concatenate([_view(batch, v) for v in views])), dtype=np.float32)[..., 0]
        n = len(batch)
        return np.mean([_unview(out[i * n : (i + 1) * n], v) for i, v in enumerate(views)], axis=0)

    def predict_samples(self, samples: Iterable[Sample]) -> Generator[Progress | Failure | tuple[Sample, Prediction], None, None]:
        """Segment many samples, yielding ``(sample, prediction)`` per image, a
        :class:`Failure` for an unreadable one, and a :class:`Progress` after each.

        Reading and resizing run on a thread pool ahead of the model, so both
        CPU cores stay busy; the model sees batches of ``batch_size``.
        """
        samples = list(samples)
        done = 0
        yield Progress(0, len(samples), "starting")
        with ThreadPoolExecutor(max_workers=2) as pool:
            loaded = _prefetch(pool, self._load, samples, ahead=2 * self.batch_size)
            for chunk in _chunks(zip(samples, loaded), self.batch_size):
                good = [(sample, item) for sample, item in chunk if not isinstance(item, Failure)]
                logits = self.model_logits(np.stack([x for _, (_, _, x) in good])) if good else []
                results = {id(sample): self._to_prediction(l, shape, guide) for (sample, (shape, guide, _)), l in zip(good, logits)}
                for sample, item in chunk:
                    done += 1
                    yield item if isinstance(item, Failure) else (sample, results[id(sample)])
                    yield Progress(done, len(samples), sample.id)

    def _load(self, sample: Sample) -> tuple[tuple[int, int], np.ndarray | None, np.ndarray] | Failure:
        """(native shape, the photograph when refinement needs it as a guide, model input):
        without refinement the decoded photograph is not kept while batches fill."""
        try:
            image = read_image(sample.image)
        except ValueError as exc:  # ImageReadError: corrupt, unsupported or odd-shaped file
            return Failure(sample, str(exc))
        return image.shape[:2], image if self.refine else None, to_model_input(image, self.input_size)

    def _to_prediction(self, logits: np.ndarray, shape: tuple[int, int], image: np.ndarray | None = None) -> Prediction:
        native = to_native(logits, shape)
        probabilities = sigmoid(native)
        if self.refine:
            probabilities = guided_refine(probabilities, image, self.input_size)
        mask = probabilities > self.threshold
        if self.postprocess:
            mask = largest_component_filled(mask)
        return Prediction(native, probabilities, mask, self.threshold, self.temperature)


#: Test-time views as (transpose, flip rows, flip columns), applied in that order.
TTA_VIEWS: dict[str, tuple[tuple[bool, bool, bool], ...]] = {
    "flips": ((False, False, False), (False, False, True), (False, True, False), (False, True, True)),
    "d4": tuple((t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)),
}


def tta_mode(value: bool | str | None) -> str | bool:
    """A card's or caller's ``tta`` as ``False``, ``"flips"`` or ``"d4"`` (``True`` means ``"flips"``)."""
    if value in (None, False, "none", "off"):
        return False
    if value is True or value == "flips":
        return "flips"
    if value == "d4":
        return "d4"
    raise ValueError(f"tta must be false, true, 'flips' or 'd4', got {value!r}")


def _view(batch: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, rows, cols = view
    out = batch.transpose(0, 2, 1, 3) if transpose else batch
    return out[:, ::-1 if rows else 1, ::-1 if cols else 1]


def _unview(maps: np.ndarray, view: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, rows, cols = view
    out = maps[:, ::-1 if rows else 1, ::-1 if cols else 1]
    return out.transpose(0, 2, 1) if transpose else out


def largest_component_filled(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of ``mask`` with its holes filled (empty stays empty)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask.copy()
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(region)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _prefetch(pool: ThreadPoolExecutor, fn: Callable[[T], object], items: list[T], ahead: int) -> Iterator:
    """``map(fn, items)`` on ``pool`` with at most ``ahead`` results in flight, in order."""
    pending: deque = deque()
    iterator = iter(items)
    for item in iterator:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.popleft().result()
        nxt = next(iterator, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


def _chunks(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
