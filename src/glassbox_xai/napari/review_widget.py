"""The Review dock widget: work through a folder, correct each prediction with
napari's label tools, and accept it into a retraining set with provenance.

The session (position, order, time spent, drafts) lives on disk beside the
retraining set, so closing napari, or a crash, loses nothing: opening the same
folder again resumes where it stopped. Shortcuts: Shift+Enter accepts,
Shift+Right goes to the next image, Shift+Left to the previous one.
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, PushButton
from napari.utils.notifications import show_info

from ..data.io import ImageReadError, read_image, read_mask
from ..data.layout import NoImagesError
from ..hitl.session import ReviewSession
from ..hitl.store import RetrainingSet, StoreError
from ..model import versions
from ..model.card import BundleError, read_card
from . import common
from .common import JobWidget
from .layers import prediction_name
from .segment_widget import apply_result

SHORTCUTS = {"Shift-Enter": "accept", "Shift-Right": "next_image", "Shift-Left": "previous_image"}
DRAFT_DELAY_MS = 1500


def default_set_dir(folder: str | Path) -> Path:
    """Where corrections of ``folder`` go unless the user picks another place (this machine only)."""
    return versions.home() / "retraining-sets" / Path(folder).resolve().name


class ReviewWidget(JobWidget):
    """Review a folder image by image: predict, correct, accept (most uncertain first on request)."""

    op = "segment"
    run_text = "Segment again"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._image_labels: list[str] = []
        self._folder = FileEdit(label="images folder", mode="d")
        self._set_dir = FileEdit(label="retraining set", mode="d")
        self._annotator = LineEdit(label="annotator", value="")
        self._open = PushButton(text="Open folder")
        self._where = Label(label="", value="no folder open")
        self._jump = ComboBox(label="image", choices=lambda _widget: self._image_labels)  # callable: napari's reset_choices keeps it
        self._skip = CheckBox(text="skip images already corrected", value=True)
        self._previous, self._next, self._accept = PushButton(text="◀ Previous"), PushButton(text="Next ▶"), PushButton(text="Accept ✓")
        navigation = Container(widgets=[self._previous, self._next, self._accept], layout="horizontal", labels=False)
        self._rank = PushButton(text="Order by uncertainty (most uncertain first)")
        keys = Label(label="", value="<small>Shift+Enter accept · Shift+→ next · Shift+← previous</small>")
        super().__init__(viewer, [self._folder, self._set_dir, self._annotator, self._open, self._where, self._jump, self._skip,
                                  navigation, self._rank, keys])
        self.session: ReviewSession | None = None
        self._predicted: np.ndarray | None = None  # the model's mask of the current image, as segmented
        self._variant = ""
        self._threshold: float | None = None
        self._shown: list[str] = []
        self._refreshing = False
        self._draft_timer = None
        self._folder.changed.connect(self._suggest_set_dir)
        self._open.clicked.connect(lambda: self.open_folder())  # not the button's checked state as a folder
        self._previous.clicked.connect(self.previous_image)
        self._next.clicked.connect(self.next_image)
        self._accept.clicked.connect(self.accept)
        self._rank.clicked.connect(self.rank)
        self._jump.changed.connect(self._jumped)
        for key, method in SHORTCUTS.items():
            viewer.bind_key(key, lambda _viewer, m=method: self._shortcut(m), overwrite=True)
        self._set_enabled(False)

    def _shortcut(self, method: str) -> None:
        try:
            getattr(self, method)()
        except RuntimeError as exc:  # the dock was closed and its Qt widgets deleted: the key does nothing
            if "deleted" not in str(exc):
                raise

    # -- opening --------------------------------------------------------------
    def _suggest_set_dir(self, folder) -> None:
        if str(self._set_dir.value) in ("", "."):
            self._set_dir.value = default_set_dir(folder)

    def open_folder(self, folder: str | Path | None = None) -> bool:
        """Open (or resume) the review of a folder; False after telling the user what is wrong."""
        if folder is not None:
            self._folder.value = folder
        if str(self._folder.value) in ("", "."):
            common.error("choose the folder of images to review")
            return False
        self._suggest_set_dir(self._folder.value)
        if self.session is not None:
            self._keep_draft()  # the image left open in the previous folder
        try:
            store = RetrainingSet(self._set_dir.value)
            self.session = ReviewSession(self._folder.value, store, annotator=self._annotator.value.strip())
        except (NoImagesError, StoreError, OSError) as exc:
            common.error(exc)
            return False
        session = self.session
        self._annotator.value = session.annotator
        self._set_enabled(True)
        if session.resumed:
            show_info(f"GlassBox: resumed the review of {session.folder.name} at {session.status()}")
        elif self._skip.value:
            session.first_open()
        self._show_current()
        return True

    def _set_enabled(self, on: bool) -> None:
        for button in (self._previous, self._next, self._accept, self._rank, self._jump):
            button.enabled = on

    # -- moving ---------------------------------------------------------------
    def next_image(self) -> None:
        if self.session is None:
            return
        self._keep_draft()
        if self.session.next(skip_corrected=self._skip.value) is None:
            show_info(f"GlassBox: end of the folder ({self.session.done} of {self.session.total} corrected)")
            return
        self._show_current()

    def previous_image(self) -> None:
        if self.session is None:
            return
        self._keep_draft()
        if self.session.previous() is not None:
            self._show_current()

    def _jumped(self, label) -> None:
        if self.session is None or label is None or self._refreshing:
            return
        index = self._image_labels.index(label) if label in self._image_labels else None
        if index is not None and index != self.session.position:
            self._keep_draft()
            self.session.go(index)
            self._show_current()

    def _refresh_list(self) -> None:
        session = self.session
        self._refreshing = True
        try:
            self._image_labels = [f"{n + 1}. {label}" for n, label in enumerate(session.labels())]
            self._jump.reset_choices()
            self._jump.value = self._image_labels[session.position]
        finally:
            self._refreshing = False
        self._where.value = f"<b>{session.status()}</b>" + ("<br>most uncertain first" if session.ordered_by == "uncertainty" else "")

    def _show_current(self) -> None:
        """Replace the previous image's layers with the current image, its ground truth, and its prediction."""
        session = self.session
        sample = session.current
        self._clear_layers()
        self._refresh_list()
        try:
            image = read_image(sample.image)
        except ImageReadError as exc:
            common.error(f"{exc}; skipped, go to the next image")
            return
        layer = self.viewer.add_image(image, name=sample.id, rgb=True, metadata={"path": str(sample.image)})
        self._shown = [sample.id]
        if sample.mask is not None:
            try:
                truth = read_mask(sample.mask, expected_shape=image.shape[:2])
                gt = self.viewer.add_labels(truth.astype(np.uint8), name=f"{sample.id} ground truth", opacity=0.9)
                gt.contour = max(2, round(max(image.shape[:2]) / 500))  # visible at full view on 12 MP photographs too
                self._shown.append(gt.name)
            except (ValueError, OSError) as exc:
                common.error(f"ground truth not shown: {exc}")
        draft = session.draft(sample.id, image.shape[:2])
        session.start_clock()
        if draft is not None:
            edited, self._predicted = draft
            self._variant, self._threshold = "draft", None  # the sidecar then records the model from the picker
            self._add_prediction(layer, edited, "draft")
            show_info(f"GlassBox: restored your unsaved edits of {sample.id}")
            return
        self._predicted = None
        self.op = "segment"
        self.run()

    def _clear_layers(self) -> None:
        for name in self._shown:
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        self._shown = []

    # -- segmenting and ranking (worker jobs) ---------------------------------
    @property
    def viewer(self):
        return self._viewer

    def request(self):
        if self.session is None:
            raise ValueError("open a folder of images first")
        if self.op == "rank":
            return None, {"folder": str(self.session.folder)}
        sample = self.session.current
        if not self._shown or sample.id not in self.viewer.layers:
            raise ValueError(f"{sample.id} could not be shown; go to the next image")
        return self.viewer.layers[sample.id], {"image": self.viewer.layers[sample.id].data}

    def show_result(self, context, result: dict) -> None:
        if "ranked" in result:
            self.session.set_order([(r["id"], r["score"]) for r in result["ranked"]])
            show_info(f"GlassBox: {len(result['ranked'])} images ordered by uncertainty, most uncertain first")
            self._show_current()
            return
        layer = context
        if layer.name != self.session.current.id:
            return  # the user moved on while this image was segmented
        self._predicted = result["mask"].astype(bool)
        self._variant, self._threshold = result["card"]["variant"], result["threshold"]
        self._add_prediction(layer, None, self._variant, result)

    def _add_prediction(self, layer, mask, variant: str, result: dict | None = None) -> None:
        result = result or {"mask": mask, "probabilities": np.zeros(mask.shape, np.float32)}
        apply_result(self.viewer, layer, result, variant)
        names = [prediction_name(layer.name, variant), f"{layer.name} probability ({variant})"]
        self._shown += [n for n in names if n not in self._shown]
        labels = self.viewer.layers[names[0]]
        labels.events.paint.connect(self._schedule_draft)
        self.viewer.layers.selection.active = labels  # ready for the brush
        labels.mode = "paint"

    def _on_finished(self) -> None:
        super()._on_finished()
        self.op = "segment"

    def rank(self) -> None:
        """Score every image of the folder by uncertainty in the worker, then review most uncertain first."""
        self.op = "rank"
        self.run()

    # -- drafts and accepting -------------------------------------------------
    def _prediction_layer(self):
        if self.session is None:
            return None
        image_id = self.session.current.id
        for name in self._shown:
            if name.startswith(f"{image_id} prediction (") and name in self.viewer.layers:
                return self.viewer.layers[name]
        return None

    def _schedule_draft(self, _event=None) -> None:
        from qtpy.QtCore import QTimer

        if self._draft_timer is None:
            self._draft_timer = QTimer()
            self._draft_timer.setSingleShot(True)
            self._draft_timer.timeout.connect(self._keep_draft)
        self._draft_timer.start(DRAFT_DELAY_MS)

    def _keep_draft(self) -> None:
        """Save unaccepted edits of the current image (a crash or moving on loses nothing)."""
        layer = self._prediction_layer()
        if layer is None or self._predicted is None:
            return
        edited = np.asarray(layer.data) > 0
        image_id = self.session.current.id
        if np.array_equal(edited, self._predicted) and not self.session.draft_path(image_id).is_file():
            return
        try:
            self.session.save_draft(image_id, edited, self._predicted)
        except OSError as exc:
            common.error(f"could not keep your edits of {image_id} as a draft: {exc}")

    def accept(self) -> None:
        """Save the current correction into the retraining set, then go to the next image."""
        layer = self._prediction_layer()
        if self.session is None or layer is None or self._predicted is None:
            common.error("nothing to accept yet: wait for the prediction of this image, then correct it")
            return
        name = self._annotator.value.strip()
        if not name:
            common.error("enter your name as annotator first (once per session): every correction records who made it")
            return
        self.session.annotator = name
        provenance = {"variant": self._variant, "threshold": self._threshold}
        try:
            bundle = self.bundle_path()
            card = read_card(bundle)
            provenance.update({"weights_sha256": card.weights_sha256, "bundle": str(bundle), "variant": card.variant})
        except (ValueError, BundleError, LookupError):
            pass  # the provenance records what is known; the save itself must not fail on it
        try:
            image = self.viewer.layers[self.session.current.id].data
            sidecar = self.session.accept(np.asarray(layer.data) > 0, self._predicted, provenance, image_shape=image.shape[:2])
        except KeyError:
            common.error("the image layer of this review was closed; go to the next image and back to reopen it")
            return
        except (StoreError, ValueError) as exc:
            common.error(exc)
            return
        self._predicted = None  # accepted: nothing left to keep as a draft
        edits = sidecar["edits"]
        show_info(f"GlassBox: saved {sidecar['id']} (version {sidecar['version']}): {edits['pixels_added']:,} pixels added, "
                  f"{edits['pixels_removed']:,} removed, Dice to the prediction {edits['dice_prediction_vs_correction']:.3f}")
        self.next_image()
        self._refresh_list()
