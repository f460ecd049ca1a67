"""A review session: one pass of an annotator over a folder of photographs.

The session remembers, in ``<set>/review/session.json`` (written atomically on
every change), the folder, the order (folder order or most uncertain first,
with the scores), the position, the annotator and the seconds spent per image;
opening the same folder with the same retraining set again resumes exactly
there, after napari was closed or crashed. Edits not yet accepted are kept as
drafts in ``<set>/review/drafts/`` so they survive a crash too.

Pure Python and numpy: no napari, no Qt, no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import MaskError, read_image, read_mask, write_mask
from ..data.layout import Sample, discover
from ..model import versions
from .provenance import Provenance
from .ranking import RankingError, read_ranking
from .store import RetrainingSet, write_json

SESSION_FILE = "session.json"
LAST_SET_FILE = "last-retraining-set.json"


def sets_home() -> Path:
    """Where retraining sets go unless the user picks another place (this machine only)."""
    return versions.home() / "retraining-sets"


def default_set_dir(folder: str | Path) -> Path:
    """The retraining set of ``folder``, keyed by its full path: two folders both called
    ``photos`` get two sets (``photos-<hash>``). A set made before sets were keyed this way
    (named by the folder's base name alone) is kept when its session belongs to ``folder``."""
    folder = Path(folder).resolve()
    legacy = sets_home() / folder.name
    try:
        if json.loads((legacy / "review" / SESSION_FILE).read_text()).get("folder") == str(folder):
            return legacy
    except (OSError, ValueError, AttributeError):
        pass
    return sets_home() / f"{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}"


def last_set() -> Path | None:
    """The retraining set of the most recently opened review (the Fine-tune widget offers it),
    or ``None`` when there is none or it no longer exists."""
    try:
        path = Path(json.loads((versions.home() / LAST_SET_FILE).read_text())["set"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if (path / "review" / SESSION_FILE).is_file() else None


class ReviewSession:
    """Where an annotator is in a folder, what is corrected, and the order to review in."""

    def __init__(self, folder: str | Path, store: RetrainingSet, annotator: str = "", ranking: str | Path | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.samples = {s.id: s for s in discover(self.folder)}  # NoImagesError: says what was expected
        self.store = store
        self.review_dir = store.root / "review"
        (self.review_dir / "drafts").mkdir(parents=True, exist_ok=True)
        self.order: list[str] = list(self.samples)
        self.scores: dict[str, float] = {}
        self.ordered_by = "folder"
        self.position = 0
        self.seconds: dict[str, float] = {}
        self.annotator = annotator
        self._shown_at: float | None = None
        self.resumed = self._load()
        if annotator:
            self.annotator = annotator
        if ranking is not None and self.resumed and self.ordered_by == "uncertainty":
            read_ranking(ranking)  # checked (a bad file is named), but a resumed ranked session keeps its place
        elif ranking is not None:
            self.order_from_ranking(ranking)
        self._save()
        self._remember_set()

    def _remember_set(self) -> None:
        """Record this set as the last one reviewed (what fine-tuning offers next); best effort."""
        try:
            versions.home().mkdir(parents=True, exist_ok=True)
            write_json(versions.home() / LAST_SET_FILE, {"set": str(self.store.root.resolve()), "folder": str(self.folder)})
        except OSError:
            pass  # only a convenience: the set itself is saved

    # -- where we are ---------------------------------------------------------
    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def current(self) -> Sample:
        return self.samples[self.order[self.position]]

    @property
    def done(self) -> int:
        return len(self.store.corrected_ids() & self.samples.keys())

    def status(self) -> str:
        """``image 3 of 40 · 12 corrected``, as the widget shows it."""
        return f"image {self.position + 1} of {self.total} · {self.done} corrected"

    def labels(self) -> list[str]:
        """One line per image, in review order, for the jump list: id, uncertainty, state
        (one listing of the corrections and one of the drafts, however long the folder)."""
        corrected = self.store.corrected_ids()
        drafts = {path.name[: -len("_draft.png")] for path in (self.review_dir / "drafts").glob("*_draft.png")}
        return [self._label(i, corrected, drafts) for i in self.order]

    def label(self, image_id: str) -> str:
        """The jump-list line of one image."""
        return self.labels()[self.order.index(image_id)]

    def _label(self, image_id: str, corrected: set[str], drafts: set[str]) -> str:
        parts = [image_id]
        if image_id in self.scores:
            parts.append(f"uncertainty {self.scores[image_id]:.3f}")
        if image_id in corrected:
            parts.append("✓ corrected")
        elif image_id in drafts:
            parts.append("draft")
        return " · ".join(parts)

    # -- moving ---------------------------------------------------------------
    def go(self, index: int) -> Sample:
        if not 0 <= index < self.total:
            raise IndexError(f"image {index + 1} does not exist; the folder has {self.total} images")
        self._stop_clock()
        self.position = index
        self._save()
        return self.current

    def next(self, skip_corrected: bool = True) -> Sample | None:
        """The next image (the next not yet corrected, with ``skip_corrected``); ``None`` at the end."""
        corrected = self.store.corrected_ids() if skip_corrected else set()
        for index in range(self.position + 1, self.total):
            if self.order[index] not in corrected:
                return self.go(index)
        return None

    def previous(self) -> Sample | None:
        return self.go(self.position - 1) if self.position > 0 else None

    def first_open(self) -> Sample:
        """The first image not yet corrected (the last one when all are)."""
        corrected = self.store.corrected_ids()
        for index, image_id in enumerate(self.order):
            if image_id not in corrected:
                return self.go(index)
        return self.go(self.total - 1)

    def set_order(self, ranked: list[tuple[str, float]]) -> None:
        """Review most uncertain first: ``ranked`` is (id, score) pairs, most uncertain first."""
        unknown = [i for i, _ in ranked if i not in self.samples]
        if unknown:
            raise ValueError(f"{len(unknown)} ranked id(s) are not in {self.folder}, e.g. {unknown[0]}")
        self.scores = {i: float(s) for i, s in ranked}
        ranked_ids = [i for i, _ in ranked]
        self.order = ranked_ids + [i for i in self.samples if i not in self.scores]
        self.ordered_by = "uncertainty"
        self.first_open()

    def order_from_ranking(self, path: str | Path) -> int:
        """Review in the order of a ``glassbox rank`` CSV, most uncertain first.

        The ranking may cover a whole archive: its ids not in this folder are ignored,
        and the folder's images it lacks come last. Returns how many it ranked here.

        Raises:
            RankingError: the CSV is unreadable, not a ``glassbox rank`` ranking, or ranks none of this folder's images.
        """
        ranked = [(i, score) for i, score in read_ranking(path) if i in self.samples]
        if not ranked:
            raise RankingError(f"none of the images in {self.folder} is ranked in {path}; expected a glassbox rank CSV "
                               "made over this folder (or an archive holding it), or no ranking")
        self.set_order(ranked)
        return len(ranked)

    # -- time -----------------------------------------------------------------
    def start_clock(self) -> None:
        """Start timing the current image (when it is shown)."""
        self._shown_at = time.monotonic()

    def _stop_clock(self) -> None:
        if self._shown_at is not None and self.order:
            image_id = self.order[self.position]
            self.seconds[image_id] = self.seconds.get(image_id, 0.0) + time.monotonic() - self._shown_at
        self._shown_at = None

    def seconds_on(self, image_id: str) -> float:
        running = time.monotonic() - self._shown_at if self._shown_at is not None and self.order[self.position] == image_id else 0.0
        return self.seconds.get(image_id, 0.0) + running

    # -- drafts and accepting -------------------------------------------------
    def draft_path(self, image_id: str) -> Path:
        return self.review_dir / "drafts" / f"{image_id}_draft.png"

    def save_draft(self, image_id: str, mask: np.ndarray, predicted: np.ndarray, provenance: Provenance | None = None) -> None:
        """Keep unaccepted edits, the prediction they started from and the model that made it on disk."""
        write_json(self._draft_provenance_path(image_id), (provenance or Provenance()).as_dict())
        write_mask(self.review_dir / "drafts" / f"{image_id}_predicted.png", predicted)
        write_mask(self.draft_path(image_id), mask)

    def _draft_provenance_path(self, image_id: str) -> Path:
        return self.review_dir / "drafts" / f"{image_id}_model.json"

    def provenance(self, image_id: str, kind: str) -> Provenance:
        """The model behind a ``"draft"`` or an accepted (``"corrected"``) mask of ``image_id``:
        what the draft or the latest sidecar recorded (unknown fields ``None``)."""
        try:
            if kind == "draft":
                return Provenance.from_dict(json.loads(self._draft_provenance_path(image_id).read_text()))
            return Provenance.from_dict(self.store.sidecar(image_id))
        except (OSError, ValueError, TypeError):
            return Provenance()

    def draft(self, image_id: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(edited mask, original prediction) of an unaccepted draft, or ``None``."""
        try:
            if self.draft_path(image_id).is_file():
                return (read_mask(self.draft_path(image_id), expected_shape=shape),
                        read_mask(self.review_dir / "drafts" / f"{image_id}_predicted.png", expected_shape=shape))
        except (MaskError, OSError):
            return None
        return None

    def saved(self, image_id: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
        """(accepted correction, the prediction it started from) of an image already in the
        retraining set (its latest version), or ``None`` when it has none or it cannot be read."""
        mask = self.store.root / "masks" / f"{image_id}_segmentation.png"
        prediction = self.store.root / "predictions" / f"{image_id}_prediction.png"
        try:
            if mask.is_file():
                predicted = read_mask(prediction, expected_shape=shape) if prediction.is_file() else np.zeros(shape, bool)
                return read_mask(mask, expected_shape=shape), predicted
        except (MaskError, OSError):
            return None
        return None

    def accept(self, corrected: np.ndarray, predicted: np.ndarray, provenance: Provenance,
               image_shape: tuple[int, int] | None = None) -> dict[str, Any]:
        """Save the current image's correction in the retraining set; return its sidecar.

        ``provenance`` is the model that made ``predicted`` (from its worker result, or from
        the draft or correction it was restored from). ``image_shape`` is the photograph's
        (rows, cols), read from the file when not given.

        Raises:
            MaskError: a mask's size differs from the photograph's.
            StoreError: the save failed (disk full, unwritable); nothing is lost.
        """
        sample = self.current
        provenance = {**provenance.as_dict(), "annotator": self.annotator, "seconds": round(self.seconds_on(sample.id), 1)}
        shape = tuple(image_shape) if image_shape is not None else read_image(sample.image).shape[:2]
        sidecar = self.store.save(sample.image, shape, corrected, predicted, provenance)
        for path in (self.draft_path(sample.id), self.review_dir / "drafts" / f"{sample.id}_predicted.png",
                     self._draft_provenance_path(sample.id)):
            path.unlink(missing_ok=True)
        self._save()
        return sidecar

    # -- persistence ----------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.review_dir / SESSION_FILE

    def _load(self) -> bool:
        if not self.state_path.is_file():
            return False
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError):
            return False  # a damaged state file: start over in folder order (corrections are safe in the set)
        if state.get("folder") != str(self.folder):
            return False
        kept = [i for i in state.get("order", []) if i in self.samples]
        self.order = kept + [i for i in self.samples if i not in kept]
        self.scores = {i: s for i, s in state.get("scores", {}).items() if i in self.samples}
        self.ordered_by = state.get("ordered_by", "folder")
        self.seconds = dict(state.get("seconds", {}))
        self.annotator = state.get("annotator", "")
        current = state.get("current")
        self.position = self.order.index(current) if current in self.samples else 0
        return True

    def _save(self) -> None:
        write_json(self.state_path, {
            "folder": str(self.folder),
            "order": self.order,
            "ordered_by": self.ordered_by,
            "scores": self.scores,
            "current": self.order[self.position] if self.order else None,
            "annotator": self.annotator,
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "updated": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        })
