"""What every GlassBox dock widget shares: the per-viewer model worker, the model
picker, and a job runner with progress bar, cancel button and notifications."""

import weakref
from pathlib import Path

import napari
from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar, PushButton, create_widget
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from psygnal import Signal
from qtpy.QtCore import QEvent, QObject, QTimer

from ..device_probe import likely_device
from ..figures import DISCLAIMER
from ..model import versions
from ..model.registry import NoTrainedModelError
from ..worker.client import JobCancelled, ModelWorker, WorkerError

BUNDLE_ON_DISK = "bundle on disk…"
_workers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class ModelEvents:
    """What every GlassBox widget listens to, instead of writing into each other."""

    active_changed = Signal(str)  # the name of the model that became active


model_events = ModelEvents()


def make_active(name: str) -> None:
    """Make ``name`` the active model (a shipped variant or a registered version) and tell every
    GlassBox widget, whose model pickers follow it.

    Raises:
        NoTrainedModelError: no model of that name; BundleError: the version list cannot be written.
    """
    versions.set_active(name)
    model_events.active_changed.emit(name)


def error(message) -> None:
    """Tell the user what went wrong and what to do, as a napari notification."""
    show_error(f"GlassBox: {message}")


TURN_MS = 5  # a zero-delay timer can run before the pending redraw; a few ms lets it (and the user's input) in


def in_turns(steps, wanted) -> None:
    """Run ``steps`` (callables) one per later turn of the Qt event loop, dropping the rest once
    ``wanted()`` is false. Each update of a 10 MP layer costs its own upload and redraw
    (about 20-70 ms here); done together, image, outline and mask stalled the viewer past
    100 ms, while in turns the user's clicks and keys are served between them."""
    steps = list(steps)

    def step() -> None:
        if steps and wanted():
            steps.pop(0)()
            if steps:
                QTimer.singleShot(TURN_MS, step)

    if steps:
        QTimer.singleShot(TURN_MS, step)  # the caller's own layer update is drawn first


def worker_for(viewer) -> ModelWorker:
    """The model worker shared by every GlassBox widget of one viewer (started on first use)."""
    if viewer not in _workers:
        _workers[viewer] = ModelWorker()
    return _workers[viewer]


def layer_pickers():
    """The image and (optional) ground-truth layer pickers that start the model widgets."""
    image = create_widget(annotation=napari.layers.Image, label="image")
    truth = create_widget(annotation=napari.layers.Labels, label="ground truth", options={"nullable": True})
    image.tooltip = "The dermoscopy photograph (an image layer) the model runs on"
    truth.tooltip = "Optional: the expert's lesion mask (a Labels layer of the same size), to score the result"
    return image, truth


def model_choices(_widget=None) -> list[str]:
    """Shipped variants, then fine-tuned versions, then the option to pick a bundle folder."""
    return versions.model_names() + [BUNDLE_ON_DISK]


def device_line(worker: ModelWorker) -> str:
    """The device the model runs on: the worker's own answer once it has run, else a cheap guess
    (no TensorFlow in this process)."""
    if worker.device:
        return f"device: {worker.device}"
    return f"device: {likely_device()} (expected; confirmed at the first run)"


@thread_worker
def run_job(job):
    """Drive a worker job (made with ``ModelWorker.run`` in the GUI thread). Expected
    failures come back as ``{"failed": WorkerError}``, neither raised nor returned bare:
    superqt re-raises either into napari's error dialog."""
    try:
        result = yield from job
    except WorkerError as exc:
        return {"failed": exc}
    return result


class _ParentChanged(QObject):
    """Calls ``callback`` when the watched widget gets a new parent (is docked)."""

    def __init__(self, callback):
        super().__init__()
        self._callback = callback

    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.ParentChange:
            self._callback()
        return False


class JobWidget(Container):
    """A dock widget with a model picker, a run and a cancel button, a progress bar and a status line.

    Subclasses add their inputs, implement :meth:`request` (checked job arguments, or
    ``None`` after telling the user what is wrong) and :meth:`show_result`. Every
    control is a public magicgui widget: a script or a test sets its ``value`` (or
    emits a button's ``clicked``) as a user would, then reads the labels and layers;
    :attr:`running` says whether a job is running, and the :attr:`progressed` signal
    reports each progress record of the running job as the status line shows it.

    Controls:
        model: the model picker (a shipped variant, a fine-tuned version, or a bundle on disk);
            built but not shown when the subclass passes ``model_picker=False``.
        bundle: the bundle folder, shown while ``model`` is the bundle-on-disk choice.
        run_button: starts the job (:meth:`run`).
        cancel_button: stops the running job (:meth:`cancel`).
        progress: the progress bar of the running job.
        status: the status line (the device, what the worker is doing, how the last job ended).
        info: the results of the last run (metric tables, notes).
    """

    progressed = Signal(object)  # a Progress of the running job, once the progress bar and status line show it
    op = ""
    run_text = "Run"
    scrollable = False  # True: the dock scrolls instead of growing taller than the window

    def __init__(self, viewer, inputs: list, model_picker: bool = True):
        super().__init__(labels=True, scrollable=self.scrollable)
        if self.scrollable:  # napari docks ``native``: make that the scroll area, which tells of being docked
            self._docked = _ParentChanged(self.reset_choices)
            self.root_native_widget.installEventFilter(self._docked)
        self.has_model_picker = model_picker  # whether ``model`` and ``bundle`` are shown
        self._viewer = viewer
        self.model = ComboBox(label="model", choices=model_choices,
                              tooltip="The model: a shipped variant, a fine-tuned version, or a bundle folder on disk")
        self.model.value = versions.active() or self.model.value
        self.bundle = FileEdit(label="bundle folder", mode="d", visible=self.model.value == BUNDLE_ON_DISK,
                               tooltip="A model bundle folder (model.keras, config.json, card.json)")
        self.run_button = PushButton(text=self.run_text, tooltip=f"{self.run_text}: run in the model worker process (napari stays responsive)")
        self.cancel_button = PushButton(text="Cancel", enabled=False, tooltip="Stop the running job")
        self.progress = ProgressBar(label="progress", value=0, max=1, visible=False, tooltip="Progress of the running job")
        self.status = Label(label="", value=device_line(worker_for(viewer)), tooltip="What the model worker is doing, and on which device")
        self.info = Label(label="", value=f"<i>{DISCLAIMER}</i>", tooltip="Results of the last run")
        picker = [self.model, self.bundle] if model_picker else []
        self.extend([*inputs, *picker, self.run_button, self.cancel_button, self.progress, self.status, self.info])
        self.model.changed.connect(lambda value: setattr(self.bundle, "visible", value == BUNDLE_ON_DISK))
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self._job = None
        self.result: dict | None = None
        self.native.setMaximumWidth(440)
        if self.scrollable:  # the controls keep the dock's width (tables wrap) and sit at the top
            controls = Container.native.fget(self)
            controls.setMaximumWidth(440 - self.native.verticalScrollBar().sizeHint().width())
            controls.layout().addStretch(1)
        for label in (self.status, self.info):
            label.native.setWordWrap(True)  # long tables and notes wrap instead of being cut at the dock's edge
        model_events.active_changed.connect(self._follow_active)  # held weakly: a closed widget drops out

    def _follow_active(self, name: str) -> None:
        """Another widget made ``name`` the active model: list it, and run with it from now on."""
        try:
            self.reset_choices()
            if self.has_model_picker and name in self.model.choices:
                self.model.value = name
        except RuntimeError as exc:  # the dock was closed and its Qt widgets deleted
            if "deleted" not in str(exc):
                raise

    @property
    def running(self) -> bool:
        """Whether a job is running (the run button comes back when it is over)."""
        return self._job is not None

    @property
    def native(self):
        """The widget napari docks: the scroll area around the controls when ``scrollable``."""
        return self.root_native_widget

    def bundle_path(self) -> Path:
        """The bundle folder the current model choice points to."""
        if self.model.value == BUNDLE_ON_DISK:
            if str(self.bundle.value) in ("", "."):
                raise NoTrainedModelError("choose a model bundle folder (it holds model.keras, config.json and card.json)")
            return Path(self.bundle.value)
        return versions.bundle_for(self.model.value)

    def request(self) -> tuple[object, dict] | None:
        """(context, job kwargs) for the worker, or None after a notification."""
        raise NotImplementedError

    def show_result(self, context, result: dict) -> None:
        raise NotImplementedError

    def run(self) -> None:
        """Check the inputs and start the job in the worker (the viewer stays responsive)."""
        try:
            checked = self.request()
            if checked is None:
                return
            context, kwargs = checked
            if self.has_model_picker:
                kwargs["bundle"] = str(self.bundle_path())
        except (ValueError, NoTrainedModelError) as exc:
            error(exc)
            return
        worker = worker_for(self._viewer)
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.progress.visible, self.progress.value = True, 0
        self.status.value = "working…" if worker.alive else "starting the model worker…"
        job = run_job(worker.run(self.op, **kwargs))
        job.yielded.connect(self._on_progress)
        job.returned.connect(lambda result: self._on_failure(result["failed"]) if "failed" in result else self._on_result(context, result))
        job.errored.connect(lambda exc: error(f"unexpected error: {exc}"))
        job.finished.connect(lambda: self._on_finished() if self._job is job else None)  # a newer job may have started from a result
        self._job = job
        job.start()

    def cancel(self) -> None:
        """Stop the running job at once."""
        worker_for(self._viewer).cancel()

    def _on_progress(self, progress) -> None:
        self.progress.max = max(progress.total, 1)
        self.progress.value = progress.done
        self.status.value = progress.message
        self.progressed.emit(progress)

    def _on_result(self, context, result: dict) -> None:
        self.result = result
        self.status.value = f"{result['card']['name'] or 'model ' + result['card']['variant']} ran on {result['device']}"
        self.show_result(context, result)

    def _on_failure(self, exc: WorkerError) -> None:
        if isinstance(exc, JobCancelled):
            self.status.value = "cancelled"
            show_info("GlassBox: cancelled")
        else:
            self.status.value = "failed"
            error(exc.summary)  # the first line, and the log that holds the worker's traceback

    def _on_finished(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.progress.visible = False
        self._job = None
