"""The Review dock widget: work through a folder, correct each prediction with
napari's label tools, and accept it into a retraining set with provenance.

The session (position, order, time spent, drafts) lives on disk beside the
retraining set, so closing napari, or a crash, loses nothing: opening the same
folder again resumes where it stopped. Shortcuts: Shift+Enter accepts,
Shift+Right goes to the next image, Shift+Left to the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, PushButton
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_info

from ..data.io import ImageReadError, read_image, read_mask
from ..data.layout import NoImagesError, Sample
from ..hitl.provenance import Provenance
from ..hitl.ranking import RankingError
from ..hitl.session import ReviewSession, default_set_dir
from ..hitl.store import RetrainingSet, StoreError
from . import common
from .common import JobWidget
from .io_hooks import truth_outline
from .layers import LESION_COLOR, prediction_name

SHORTCUTS = {"Shift-Enter": "accept", "Shift-Right": "next_image", "Shift-Left": "previous_image"}
DRAFT_DELAY_MS = 1500


@dataclass
class Loaded:
    """One image of the review as read from disk, off the GUI thread.

    ``kind`` says what ``mask`` is: ``"draft"`` (unaccepted edits), ``"corrected"`` (the
    accepted correction in the retraining set) or ``""`` (nothing yet: segment it).
    ``truth`` is the ground truth's outline, drawn over the photograph; ``provenance`` the
    model that made the draft's or correction's prediction, as recorded with it.
    """

    sample: Sample
    image: np.ndarray | None = None
    truth: np.ndarray | None = None
    mask: np.ndarray | None = None
    predicted: np.ndarray | None = None
    kind: str = ""
    provenance: Provenance = Provenance()
    error: str = ""
    truth_error: str = ""


def load_sample(session: ReviewSession, sample: Sample) -> Loaded:
    """Read a photograph, its ground truth, and its draft or accepted correction (a draft,
    being newer, wins). Read errors come back in the record, never raised."""
    try:
        image = read_image(sample.image)
    except ImageReadError as exc:
        return Loaded(sample, error=f"{exc}; skipped, go to the next image")
    loaded = Loaded(sample, image)
    if sample.mask is not None:
        try:
            loaded.truth = truth_outline(read_mask(sample.mask, expected_shape=image.shape[:2]))
        except (ValueError, OSError) as exc:
            loaded.truth_error = f"ground truth not shown: {exc}"
    for kind, found in (("draft", session.draft(sample.id, image.shape[:2])), ("corrected", session.saved(sample.id, image.shape[:2]))):
        if found is not None:
            (loaded.mask, loaded.predicted), loaded.kind = found, kind
            loaded.provenance = session.provenance(sample.id, kind)
            break
    return loaded


_load_in_thread = thread_worker(load_sample)


@thread_worker
def _accept_in_thread(session: ReviewSession, corrected: np.ndarray, predicted: np.ndarray, provenance: Provenance,
                      image_shape: tuple[int, int]) -> dict:
    """Save a correction off the GUI thread (PNG encoding and fsync of a 10 MP mask took 0.4 s)."""
    return session.accept(corrected, predicted, provenance, image_shape=image_shape)


def _unwrapped(layer):
    """The layer itself: a dock widget's viewer hands out a new public-only proxy per access,
    so layers kept across images (and compared by identity) are kept unwrapped."""
    return getattr(layer, "__wrapped__", layer)


class ReviewWidget(JobWidget):
    """Review a folder image by image: predict, correct, accept (most uncertain first on request).

    The widget keeps one image layer, one ground-truth layer and one editable prediction
    layer for the whole review and updates their data in place from image to image
    (removing and re-adding layers stalled the viewer for seconds); photographs are read
    off the GUI thread. An image already corrected shows its accepted correction.

    Controls, besides those of :class:`~glassbox_xai.napari.common.JobWidget`
    (``run_button`` segments the current image again):
        folder: the folder of photographs to review (:meth:`open_folder` opens it).
        retraining_set: where accepted corrections are saved; the review session is kept there too.
        annotator: the annotator's name, recorded with every accepted correction.
        ranking: an optional ``glassbox rank`` CSV giving the review order.
        open_button: opens the folder, or resumes its review.
        where: the position in the review (image n of N, corrections so far, the order).
        jump: the list of the folder's images in review order; choosing one goes to it.
        skip_corrected: whether Next skips images that already have an accepted correction.
        previous_button: the previous image (:meth:`previous_image`).
        next_button: the next image (:meth:`next_image`).
        accept_button: saves the correction and goes on (:meth:`accept`).
        rank_button: orders the folder by uncertainty (:meth:`rank`).
    """

    op = "segment"
    run_text = "Segment again"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._image_labels: list[str] = []
        self.folder = FileEdit(label="images folder", mode="d")
        self.retraining_set = FileEdit(label="retraining set", mode="d")
        self.annotator = LineEdit(label="annotator", value="")
        self.ranking = FileEdit(label="ranking (opt.)", mode="r", filter="*.csv")
        self.open_button = PushButton(text="Open folder")
        self.where = Label(label="", value="no folder open")
        self.jump = ComboBox(label="image", choices=lambda _widget: self._image_labels)  # callable: napari's reset_choices keeps it
        self.skip_corrected = CheckBox(text="skip images already corrected", value=True)
        self.previous_button, self.next_button = PushButton(text="◀ Previous"), PushButton(text="Next ▶")
        self.accept_button = PushButton(text="Accept ✓")
        navigation = Container(widgets=[self.previous_button, self.next_button, self.accept_button], layout="horizontal", labels=False)
        self.rank_button = PushButton(text="Order by uncertainty (most uncertain first)")
        keys = Label(label="", value="<small>Shift+Enter accept · Shift+→ next · Shift+← previous</small>")
        super().__init__(viewer, [self.folder, self.retraining_set, self.annotator, self.ranking, self.open_button, self.where, self.jump,
                                  self.skip_corrected, navigation, self.rank_button, keys])
        self.session: ReviewSession | None = None
        self._predicted: np.ndarray | None = None  # the model's mask of the current image, as segmented
        self._saved: np.ndarray | None = None  # the accepted correction of the current image, when it has one
        self._provenance = Provenance()  # the model that made the current prediction, as its result said
        self._layers: dict = {}  # "image", "truth", "labels": the same layer objects for the whole review
        self._shown_id: str | None = None  # the image whose data the layers hold
        self._reading = False  # an image is being read: nothing to segment again yet
        self._saving = False  # a correction is being saved: no moving, editing or accepting until it is
        self._refreshing = False
        self._draft_timer = None
        self.folder.changed.connect(self._suggest_set_dir)
        self.open_button.clicked.connect(lambda: self.open_folder())  # not the button's checked state as a folder
        self.previous_button.clicked.connect(self.previous_image)
        self.next_button.clicked.connect(self.next_image)
        self.accept_button.clicked.connect(self.accept)
        self.rank_button.clicked.connect(self.rank)
        self.jump.changed.connect(self._jumped)
        for key, method in SHORTCUTS.items():
            viewer.bind_key(key, lambda _viewer, m=method: self._shortcut(m), overwrite=True)
        self._add_tooltips()
        self._set_enabled(False)

    def _add_tooltips(self) -> None:
        tips = {
            self.folder: "The folder of photographs to review (ISIC layout or flat; masks beside them are shown as ground truth).",
            self.retraining_set: "Where accepted corrections are saved (the retraining set); the review session is kept there too.",
            self.annotator: "Your name: every accepted correction records who made it.",
            self.ranking: "Optional: a CSV written by `glassbox rank` over the archive; the folder is then reviewed "
                          "in its order, most uncertain first (images it does not rank come last).",
            self.open_button: "Open the folder, or resume its review where it stopped.",
            self.jump: "Go to any image of the folder (✓ corrected, draft: unaccepted edits kept).",
            self.skip_corrected: "Next skips images that already have an accepted correction.",
            self.previous_button: "Previous image, without saving (edits are kept as a draft). Shift+Left.",
            self.next_button: "Next image, without saving (edits are kept as a draft). Shift+Right.",
            self.accept_button: "Save the correction into the retraining set with its provenance, then go to the next image. Shift+Enter.",
            self.rank_button: "Score every image by the model's uncertainty in the worker, then review the most uncertain first.",
            self.run_button: "Segment the current image again with the chosen model (replaces what is shown, edits included).",
            self.cancel_button: "Stop the running job.",
            self.model: "The model that segments the images: a shipped variant, a fine-tuned version, or a bundle folder.",
            self.bundle: "A model bundle folder (holds model.keras, config.json and card.json).",
            self.progress: "Progress of the running job.",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip

    def _shortcut(self, method: str) -> None:
        try:
            getattr(self, method)()
        except RuntimeError as exc:  # the dock was closed and its Qt widgets deleted: the key does nothing
            if "deleted" not in str(exc):
                raise

    # -- opening --------------------------------------------------------------
    def _suggest_set_dir(self, folder) -> None:
        if str(self.retraining_set.value) in ("", "."):
            self.retraining_set.value = default_set_dir(folder)

    def open_folder(self, folder: str | Path | None = None) -> bool:
        """Open (or resume) the review of a folder; False after telling the user what is wrong."""
        if folder is not None:
            self.folder.value = folder
        if str(self.folder.value) in ("", "."):
            common.error("choose the folder of images to review")
            return False
        self._suggest_set_dir(self.folder.value)
        if self.session is not None:
            self._keep_draft()  # the image left open in the previous folder
        ranking = None if str(self.ranking.value) in ("", ".") else Path(self.ranking.value)
        try:
            store = RetrainingSet(self.retraining_set.value)
            self.session = ReviewSession(self.folder.value, store, annotator=self.annotator.value.strip(), ranking=ranking)
        except (NoImagesError, StoreError, RankingError, OSError) as exc:
            common.error(exc)
            return False
        session = self.session
        self.annotator.value = session.annotator
        self._set_enabled(True)
        if ranking is not None:
            show_info(f"GlassBox: {len(session.scores)} of {session.total} images ordered by {ranking.name}, most uncertain first")
        if session.resumed:
            show_info(f"GlassBox: resumed the review of {session.folder.name} at {session.status()}")
        elif self.skip_corrected.value:
            session.first_open()
        self._show_current()
        return True

    def _set_enabled(self, on: bool) -> None:
        for button in (self.previous_button, self.next_button, self.accept_button, self.rank_button, self.jump):
            button.enabled = on

    # -- moving ---------------------------------------------------------------
    def next_image(self) -> None:
        """Go to the next image (skipping corrected ones when asked); edits are kept as a draft."""
        if self.session is None or self._saving:
            return
        self._keep_draft()
        if self.session.next(skip_corrected=self.skip_corrected.value) is None:
            show_info(f"GlassBox: end of the folder ({self.session.done} of {self.session.total} corrected)")
            return
        self._show_current()

    def previous_image(self) -> None:
        """Go back to the previous image; edits are kept as a draft."""
        if self.session is None or self._saving:
            return
        self._keep_draft()
        if self.session.previous() is not None:
            self._show_current()

    def _jumped(self, label) -> None:
        if self.session is None or label is None or self._refreshing or self._saving:
            return
        index = self._image_labels.index(label) if label in self._image_labels else None
        if index is not None and index != self.session.position:
            self._keep_draft()
            self.session.go(index)
            self._show_current()

    def _refresh_list(self) -> None:
        """The jump list in review order, the current image chosen. A line whose text changed
        (``✓ corrected``) keeps its place: the list is rebuilt, not appended to."""
        session = self.session
        self._refreshing = True
        try:
            labels = [f"{n + 1}. {label}" for n, label in enumerate(session.labels())]
            if labels != self._image_labels:
                self._image_labels = labels
                self.jump.native.clear()  # magicgui appends changed items at the end otherwise
                self.jump.reset_choices()
            self.jump.value = self._image_labels[session.position]
        finally:
            self._refreshing = False
        self.where.value = f"<b>{session.status()}</b>" + ("<br>most uncertain first" if session.ordered_by == "uncertainty" else "")

    def _show_current(self) -> None:
        """Read the current image (off the GUI thread), then show it in the same layers."""
        session = self.session
        sample = session.current
        self._refresh_list()
        self._shown_id, self._predicted, self._saved = None, None, None
        labels = self._layers.get("labels")
        if labels is not None and self._alive(labels):
            labels.visible = False  # the previous image's mask must not be edited as this one's
        truth = self._layers.get("truth")
        if truth is not None and self._alive(truth):
            truth.visible = False  # nor its outline drawn over this one
        self.where.value += f"<br>reading {sample.id}…"
        self._reading, self.run_button.enabled = True, False  # nothing to segment again until the image is read
        job = _load_in_thread(session, sample)
        job.returned.connect(self._on_loaded_if_open)
        job.errored.connect(lambda exc: self._on_load_error(sample, exc))
        job.start()

    def _on_loaded_if_open(self, loaded: "Loaded") -> None:
        try:
            self._on_loaded(loaded)
        except RuntimeError as exc:  # the dock was closed while the image was read
            if "deleted" not in str(exc):
                raise

    def _on_loaded(self, loaded: Loaded) -> None:
        session = self.session
        if session is None or loaded.sample.id != session.current.id:
            return  # the user moved on while this image was read
        self.where.value = self.where.value.split("<br>reading")[0]
        self._reading, self.run_button.enabled = False, self._job is None
        if loaded.error:
            common.error(loaded.error)
            return
        if loaded.truth_error:
            common.error(loaded.truth_error)
        self._put_image(loaded)
        session.start_clock()
        self.run_button.enabled = False  # until its layers are all shown (they come in turns, below)
        outline = lambda: self._put_truth(loaded.sample.id, loaded.truth)  # noqa: E731
        if loaded.kind:
            self._predicted = loaded.predicted
            self._saved = loaded.mask if loaded.kind == "corrected" else None
            self._provenance = loaded.provenance  # recorded with the draft or correction: not the picker's model
            what = "your unsaved edits" if loaded.kind == "draft" else "the accepted correction"
            later = [outline, lambda: (self._put_labels(loaded.mask, loaded.kind), show_info(f"GlassBox: showing {what} of {loaded.sample.id}"))]
        else:
            later = [self._segment_shown, outline]  # the model works on the photograph while its outline is drawn
        later.append(lambda: setattr(self.run_button, "enabled", self._job is None and not self._reading))
        # one step per event-loop turn: a 10 MP photograph, the start of its job (sending it to the
        # worker), its outline and its mask, done at once, stalled the viewer for 140-200 ms
        common.in_turns(later, lambda: self.session is session and self._shown_id == loaded.sample.id == session.current.id)

    def _segment_shown(self) -> None:
        self.op = "segment"
        self.run()

    def _on_load_error(self, sample: Sample, exc: Exception) -> None:
        self._reading, self.run_button.enabled = False, self._job is None
        common.error(f"could not read {sample.image}: {exc}")

    # -- the layers, updated in place -----------------------------------------
    def _alive(self, layer) -> bool:
        """Whether ``layer`` is still in the viewer (the user may have closed it)."""
        return any(_unwrapped(other) is layer for other in self.viewer.layers)

    def _put_image(self, loaded: Loaded) -> None:
        image_id, image = loaded.sample.id, loaded.image
        layer = self._layers.get("image")
        if layer is None or not self._alive(layer):
            layer = self._layers["image"] = _unwrapped(self.viewer.add_image(image, name=image_id, rgb=True))
            resized = False
        else:
            resized = layer.data.shape != image.shape
            layer.data = image
            layer.name = image_id
            layer.visible = True
        layer.metadata["path"] = str(loaded.sample.image)
        self._shown_id = image_id
        if resized:
            self.viewer.reset_view()

    def _put_truth(self, image_id: str, outline: np.ndarray | None) -> None:
        """The ground truth's outline (computed off the GUI thread; napari's own ``contour``
        took seconds on the GUI thread at 10 MP), in one read-only layer."""
        layer = self._layers.get("truth")
        if outline is None:
            if layer is not None and self._alive(layer):
                layer.visible = False  # kept for the next image that has one
                layer.name = f"{image_id} ground truth (none)"
            return
        if layer is None or not self._alive(layer):
            layer = self._layers["truth"] = _unwrapped(self.viewer.add_labels(outline, name=f"{image_id} ground truth (outline)", opacity=0.9))
        else:
            layer.data = outline
            layer.name = f"{image_id} ground truth (outline)"
            layer.visible = True
        layer.editable = False

    def _put_labels(self, mask: np.ndarray, variant: str) -> None:
        """Show ``mask`` in the editable prediction layer, selected for the brush, with a fresh undo history."""
        from napari.utils.colormaps import DirectLabelColormap

        data = np.asarray(mask).astype(np.uint8)
        name = prediction_name(self._shown_id, variant) if variant != "corrected" else f"{self._shown_id} correction (accepted)"
        layer = self._layers.get("labels")
        if layer is None or not self._alive(layer):
            colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: LESION_COLOR})
            layer = self._layers["labels"] = _unwrapped(self.viewer.add_labels(data, name=name, opacity=0.45, colormap=colormap))
            layer.events.paint.connect(self._schedule_draft)
        else:
            layer.data = data
            layer.name = name
            layer._reset_history()  # undo must not bring back the previous image's mask
            layer.visible = True
        self.viewer.layers.selection.active = layer  # ready for the brush
        layer.mode = "paint"

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
        layer = self._layers.get("image")
        if self._shown_id != sample.id or layer is None or not self._alive(layer):
            raise ValueError(f"{sample.id} is not shown yet (or could not be read); wait for it, or go to the next image")
        return sample.id, {"image": layer.data}

    def show_result(self, context, result: dict) -> None:
        if "ranked" in result:
            self.session.set_order([(r["id"], r["score"]) for r in result["ranked"]])
            show_info(f"GlassBox: {len(result['ranked'])} images ordered by uncertainty, most uncertain first")
            self._show_current()
            return
        if context != self.session.current.id or self._shown_id != context:
            return  # the user moved on while this image was segmented
        self._predicted = result["mask"].astype(bool)
        self._saved = None
        self._provenance = Provenance.of_result(result)
        self._put_labels(self._predicted, self._provenance.label or self._provenance.variant)

    def _on_finished(self) -> None:
        super()._on_finished()
        self.run_button.enabled = not self._reading
        self.op = "segment"

    def rank(self) -> None:
        """Score every image of the folder by uncertainty in the worker, then review most uncertain first."""
        self.op = "rank"
        self.run()

    # -- drafts and accepting -------------------------------------------------
    def prediction_layer(self):
        """The editable mask layer of the current image, once it is shown (``None`` before)."""
        layer = self._layers.get("labels")
        if self.session is None or layer is None or self._shown_id != self.session.current.id or not layer.visible or not self._alive(layer):
            return None
        return layer

    def _schedule_draft(self, _event=None) -> None:
        from qtpy.QtCore import QTimer

        if self._draft_timer is None:
            self._draft_timer = QTimer()
            self._draft_timer.setSingleShot(True)
            self._draft_timer.timeout.connect(self._keep_draft)
        self._draft_timer.start(DRAFT_DELAY_MS)

    def _keep_draft(self) -> None:
        """Save unaccepted edits of the current image (a crash or moving on loses nothing)."""
        layer = self.prediction_layer()
        if layer is None or self._predicted is None or self._saving:
            return
        edited = np.asarray(layer.data) > 0
        image_id = self.session.current.id
        shown_as = self._predicted if self._saved is None else self._saved  # what the layer held before any edit
        if np.array_equal(edited, shown_as) and not self.session.draft_path(image_id).is_file():
            return
        try:
            self.session.save_draft(image_id, edited, self._predicted, self._provenance)
        except OSError as exc:
            common.error(f"could not keep your edits of {image_id} as a draft: {exc}")

    def accept(self) -> None:
        """Save the current correction into the retraining set (off the GUI thread), then go to
        the next image. Moving, accepting again and editing wait until the save is done."""
        if self._saving:
            return
        layer = self.prediction_layer()
        if self.session is None or layer is None or self._predicted is None:
            common.error("nothing to accept yet: wait for the prediction of this image, then correct it")
            return
        name = self.annotator.value.strip()
        if not name:
            common.error("enter your name as annotator first (once per session): every correction records who made it")
            return
        self.session.annotator = name
        corrected = np.asarray(layer.data) > 0
        if self._saved is not None and np.array_equal(corrected, self._saved):
            show_info(f"GlassBox: {self.session.current.id} is unchanged; its accepted correction is kept as it is")
            self.next_image()
            return
        if self._draft_timer is not None:
            self._draft_timer.stop()  # the correction is saved now, not as a draft
        self._set_saving(True, layer)
        job = _accept_in_thread(self.session, corrected, self._predicted, self._provenance, self._layers["image"].data.shape[:2])
        job.returned.connect(self._on_accepted)
        job.errored.connect(self._on_accept_failed)
        job.start()

    def _set_saving(self, on: bool, layer=None) -> None:
        self._saving = on
        self._set_enabled(not on)
        self.run_button.enabled = not on and self._job is None and not self._reading
        if layer is not None:
            layer.editable = not on  # an edit made now would be neither saved nor kept as a draft

    def _on_accept_failed(self, exc: Exception) -> None:
        self._set_saving(False, self.prediction_layer())
        common.error(exc if isinstance(exc, (StoreError, ValueError)) else f"could not save the correction: {exc}")

    def _on_accepted(self, sidecar: dict) -> None:
        try:
            self._set_saving(False, self.prediction_layer())
        except RuntimeError as exc:  # the dock was closed while saving: the correction is saved all the same
            if "deleted" not in str(exc):
                raise
            return
        self._predicted = None  # accepted: nothing left to keep as a draft
        edits = sidecar["edits"]
        show_info(f"GlassBox: saved {sidecar['id']} (version {sidecar['version']}): {edits['pixels_added']:,} pixels added, "
                  f"{edits['pixels_removed']:,} removed, Dice to the prediction {edits['dice_prediction_vs_correction']:.3f}")
        self.next_image()
        self._refresh_list()
