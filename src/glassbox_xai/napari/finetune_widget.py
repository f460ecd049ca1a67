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


# (label, weight_average): measured on PH2 with ISIC pairs mixed in (README, "On a new clinic"):
# 1.0 gains +0.022 / +0.031 Dice after 20 / 50 corrections and loses 0.017 on ISIC dev_val;
# 0.5 gains +0.013 / +0.021 and loses 0.003.
KEEP = (("adapt to these images (most gain)", 1.0), ("keep half of the parent (forgets less)", 0.5))


class FinetuneWidget(JobWidget):
    """Fine-tune the chosen model on expert corrections; pick which version is active.

    Controls, besides those of :class:`~glassbox_xai.napari.common.JobWidget`:
        retraining_set: the folder of accepted corrections (the last review's, unless chosen).
        epochs: passes over the corrections.
        keep: how much of the parent to keep (:data:`KEEP`): all of the fit (most gain on the
            corrected clinic's images) or half of the parent's weights (forgets less of what it knew).
        originals: an optional folder of original training pairs mixed in.
        held_out: an optional folder of images with masks, to compare the new version with its parent.
        active_model: the version to make active (the new one, after a run).
        make_active_button: makes ``active_model`` the active model (:meth:`make_active`).
        active_now: the model every widget uses by default.
    """

    op = "finetune"
    run_text = "Fine-tune"
    scrollable = True

    def __init__(self, viewer: napari.viewer.Viewer):
        self.retraining_set = FileEdit(label="retraining set", mode="d",
                                       tooltip="The folder the Review widget saves accepted corrections into")
        self.epochs = SpinBox(label="epochs", min=1, max=200, value=FinetuneSettings().epochs,
                              tooltip="Passes over the corrections (and the original pairs mixed in with them); "
                                      "the default was measured on another clinic's images (PH2)")
        self.keep = ComboBox(label="adaptation", choices=list(KEEP), value=FinetuneSettings().weight_average,
                             tooltip="Measured on another clinic's images (PH2), 50 corrections: adapting fully gained "
                                     "+0.031 Dice there and lost 0.017 on ISIC images; keeping half of the parent's "
                                     "weights gained +0.021 and lost 0.003. Keep half if the new version will also "
                                     "segment images like the ones the parent was trained on.")
        self.originals = FileEdit(label="originals (opt.)", mode="d",
                                  tooltip="Optional: a folder of original training images with masks, mixed in so "
                                          "the model does not forget what it knew")
        self.held_out = FileEdit(label="held-out (opt.)", mode="d",
                                 tooltip="Optional: a folder of images with masks never used for training, to "
                                         "compare the new version with its parent")
        self.active_model = ComboBox(label="active model", choices=lambda _w: versions.model_names(),
                                     tooltip="The model version every GlassBox widget starts from")
        self.make_active_button = PushButton(text="Make active", tooltip="Make the chosen version the active model (older versions stay available)")
        self.active_now = Label(label="", value="", tooltip="The model every widget uses by default")
        super().__init__(viewer, [self.retraining_set, self.epochs, self.keep, self.originals, self.held_out])
        for widget in (self.active_model, self.make_active_button, self.active_now):
            self.insert(len(self) - 1, widget)
        self.make_active_button.clicked.connect(lambda: self.make_active(self.active_model.value))
        self._show_active()
        self.offer_last_set()

    def offer_last_set(self) -> None:
        """Fill in the retraining set of the last review, unless the user chose one."""
        found = last_set()
        if found is not None and self._chosen(self.retraining_set) is None:
            self.retraining_set.value = found

    def reset_choices(self, *args) -> None:  # napari calls this when the dock is shown and layers change
        super().reset_choices(*args)
        self.offer_last_set()

    @staticmethod
    def _chosen(edit: FileEdit) -> str | None:
        return None if str(edit.value) in ("", ".") else str(edit.value)

    def request(self):
        self.offer_last_set()
        set_dir = self._chosen(self.retraining_set)
        if set_dir is None:
            raise ValueError("choose the retraining set folder (the one the Review widget saves corrections into)")
        return None, {"set_dir": set_dir, "epochs": int(self.epochs.value), "original": self._chosen(self.originals),
                      "held_out": self._chosen(self.held_out), "weight_average": float(self.keep.value)}

    def show_result(self, _context, result: dict) -> None:
        name = result["version"]  # registered by the core when it was saved
        self.active_model.reset_choices()
        self.active_model.value = name
        self.status.value = f"new version ready ({result['epochs_run']} epoch(s))"
        self.info.value = before_after_html(result.get("comparison")) + "<p>Make it active to use it in every widget.</p>"
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
        self.active_now.value = f"active: <b>{versions.active() or 'dice (default)'}</b>"

