"""The Fine-tune dock widget: train a new model version on a retraining set in the
worker process, compare it with its parent on a held-out folder, and choose the
active model (older versions stay available).

It offers the retraining set of the last review by default, starts from the measured
defaults of :class:`~glassbox_xai.hitl.finetune.FinetuneSettings`, and the core
registers the new version (this widget only lists it)."""

from __future__ import annotations

import napari
from magicgui.widgets import ComboBox, FileEdit, Label, PushButton, SpinBox
from napari.utils.notifications import show_info

from ..hitl.finetune import FinetuneSettings
from ..hitl.session import last_set
from ..model import versions
from ..model.card import BundleError
from ..model.registry import NoTrainedModelError
from . import common
from .common import JobWidget
from .layers import before_after_html


class FinetuneWidget(JobWidget):
    """Fine-tune the chosen model on expert corrections; pick which version is active."""

    op = "finetune"
    run_text = "Fine-tune"
    scrollable = True

    def __init__(self, viewer: napari.viewer.Viewer):
        self._set_dir = FileEdit(label="retraining set", mode="d",
                                 tooltip="The folder the Review widget saves accepted corrections into")
        self._epochs = SpinBox(label="epochs", min=1, max=200, value=FinetuneSettings().epochs,
                               tooltip="Passes over the corrections (and the original pairs mixed in with them); "
                                       "the default was measured on another clinic's images (PH2)")
        self._original = FileEdit(label="originals (opt.)", mode="d",
                                  tooltip="Optional: a folder of original training images with masks, mixed in so "
                                          "the model does not forget what it knew")
        self._held_out = FileEdit(label="held-out (opt.)", mode="d",
                                  tooltip="Optional: a folder of images with masks never used for training, to "
                                          "compare the new version with its parent")
        self._active = ComboBox(label="active model", choices=lambda _w: versions.model_names(),
                                tooltip="The model version every GlassBox widget starts from")
        self._activate = PushButton(text="Make active", tooltip="Make the chosen version the active model (older versions stay available)")
        self._active_now = Label(label="", value="", tooltip="The model every widget uses by default")
        super().__init__(viewer, [self._set_dir, self._epochs, self._original, self._held_out])
        for widget in (self._active, self._activate, self._active_now):
            self.insert(len(self) - 1, widget)
        self._activate.clicked.connect(lambda: self.make_active(self._active.value))
        self._show_active()
        self.offer_last_set()

    def offer_last_set(self) -> None:
        """Fill in the retraining set of the last review, unless the user chose one."""
        found = last_set()
        if found is not None and self._chosen(self._set_dir) is None:
            self._set_dir.value = found

    def reset_choices(self, *args) -> None:  # napari calls this when the dock is shown and layers change
        super().reset_choices(*args)
        self.offer_last_set()

    @staticmethod
    def _chosen(edit: FileEdit) -> str | None:
        return None if str(edit.value) in ("", ".") else str(edit.value)

    def request(self):
        self.offer_last_set()
        set_dir = self._chosen(self._set_dir)
        if set_dir is None:
            raise ValueError("choose the retraining set folder (the one the Review widget saves corrections into)")
        return None, {"set_dir": set_dir, "epochs": int(self._epochs.value), "original": self._chosen(self._original),
                      "held_out": self._chosen(self._held_out)}

    def show_result(self, _context, result: dict) -> None:
        name = result["version"]  # registered by the core when it was saved
        self._active.reset_choices()
        self._active.value = name
        self._status.value = f"new version ready ({result['epochs_run']} epoch(s))"
        self._info.value = before_after_html(result.get("comparison")) + "<p>Make it active to use it in every widget.</p>"
        show_info(f"GlassBox: fine-tuned version {name} is ready; the parent stays available")

    def make_active(self, name: str) -> None:
        """Make ``name`` the model every GlassBox widget of this viewer uses by default."""
        try:
            common.make_active(name)  # every widget's model picker follows
        except (NoTrainedModelError, BundleError, OSError) as exc:
            common.error(exc)
            return
        self._show_active()
        show_info(f"GlassBox: {name} is now the active model")

    def _show_active(self) -> None:
        self._active_now.value = f"active: <b>{versions.active() or 'dice (default)'}</b>"

