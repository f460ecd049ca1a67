"""The fit loop shared by training recipes and fine-tuning from corrections.

Keras ``fit`` on a seeded ``tf.data`` pipeline with callbacks: validation Dice
per image (at model resolution) every epoch, best checkpoint on it, early
stopping, a warm-up + cosine learning-rate schedule, a CSV log, and
``BackupAndRestore`` so an interrupted run resumes from its last finished epoch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from .dataset import eval_arrays, train_dataset

log = logging.getLogger(__name__)
BEST_FILE = "best.keras"


OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings of one run.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step.
        learning_rate: peak learning rate (after warm-up).
        warmup_epochs: linear warm-up length.
        min_lr_ratio: final learning rate as a fraction of the peak (cosine decay).
        weight_decay: decoupled weight decay (AdamW, or SGD's; 0 for plain Adam or SGD without it).
        optimizer: ``"adam"`` (Adam, or AdamW with weight decay), or ``"sgd"``: SGD with Nesterov
            momentum 0.9, whose steps follow each weight's gradient instead of being scaled to
            about the learning rate for every weight as Adam's are.
        patience: epochs without a better validation Dice before stopping.
        seed: seeds weights, shuffling and augmentation.
    """

    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 2e-3
    warmup_epochs: int = 1
    min_lr_ratio: float = 0.02
    weight_decay: float = 1e-4
    patience: int = 12
    seed: int = 2018
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        checks = {
            "optimizer": self.optimizer in OPTIMIZERS,
            "epochs": 1 <= self.epochs <= 2000,
            "batch_size": 1 <= self.batch_size <= 512,
            "learning_rate": 0 < self.learning_rate <= 1,
            "warmup_epochs": 0 <= self.warmup_epochs < max(self.epochs, 1),
            "min_lr_ratio": 0 <= self.min_lr_ratio <= 1,
            "weight_decay": 0 <= self.weight_decay < 1,
            "patience": self.patience >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"fit config: bad value for {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}")


class ValidationDice(keras.callbacks.Callback):
    """Adds ``val_dice`` (mean per-image Dice of logits > 0 at model resolution) to the logs."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, batch_size: int = 16):
        super().__init__()
        self.images, self.masks, self.batch_size = images, masks > 0.5, batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logits = self.model.predict(self.images, batch_size=self.batch_size, verbose=0)
        if isinstance(logits, (list, tuple)):  # deep supervision: the first output is the mask's
            logits = logits[0]
        if logs is not None:
            logs["val_dice"] = mean_dice(logits > 0, self.masks)


class ProgressCallback(keras.callbacks.Callback):
    """Reports (epoch, epochs, logs) to a plain callable after each epoch, and within an epoch
    after each batch with ``logs["batch"]`` (batches done) and ``logs["steps"]`` (per epoch)
    added, ``epoch`` then being the epoch under way."""

    def __init__(self, report: Callable[[int, int, dict], None], epochs: int, steps: int | None = None):
        super().__init__()
        self.report, self.epochs, self.steps = report, epochs, steps
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.steps:
            self.report(self._epoch + 1, self.epochs, {**dict(logs or {}), "batch": batch + 1, "steps": self.steps})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.report(epoch + 1, self.epochs, dict(logs or {}))


def per_image_dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The Dice of each image's boolean mask against its truth (1.0 when both are empty)."""
    pred, truth = pred.reshape(len(pred), -1).astype(bool), truth.reshape(len(truth), -1).astype(bool)
    tp = np.sum(pred & truth, axis=1)
    denom = pred.sum(axis=1) + truth.sum(axis=1)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)


def mean_dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over images of the per-image Dice (1.0 when both masks are empty)."""
    return float(np.mean(per_image_dice(pred, truth)))


def fit(
    model: keras.Model,
    loss: Callable,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    config: FitConfig,
    augment: dict[str, Any] | None,
    run_dir: str | Path,
    report: Callable[[int, int, dict], None] | None = None,
    verbose: int = 2,
    report_batches: bool = False,
    loss_weights: list[float] | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place, resuming from ``run_dir`` if an earlier run was cut off.

    ``report(epoch, epochs, logs)`` is called after each epoch; with ``report_batches`` also
    after each batch (see :class:`ProgressCallback`). A model with several outputs (deep
    supervision, :mod:`.deep_supervision`) fits each to the mask with ``loss_weights``; the
    first is the one validated.
    Returns a summary: best validation Dice and its epoch, epochs run, history.
    The best weights are loaded into ``model`` before returning.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    steps = max(1, len(train[0]) // config.batch_size)
    outputs = len(model.outputs)
    if (loss_weights is not None or outputs > 1) and len(loss_weights or ()) != outputs:
        raise ValueError(f"the model has {outputs} output(s); expected as many loss weights, got {loss_weights}")
    model.compile(optimizer=_optimizer(config, steps), loss=[loss] * outputs if outputs > 1 else loss,
                  loss_weights=loss_weights if outputs > 1 else None, jit_compile=False)
    done = read_log(run_dir / "log.csv")
    start_epoch = len(done)
    best_so_far = max((row.get("val_dice", -np.inf) for row in done), default=None)
    data = train_dataset(*train, config.batch_size, augment, config.seed, start_epoch=start_epoch, epochs=config.epochs)
    if outputs > 1:
        data = data.map(lambda x, y: (x, (y,) * outputs))
    val_x, val_y = eval_arrays(*val)
    callbacks = [
        ValidationDice(val_x, val_y, config.batch_size),
        keras.callbacks.ModelCheckpoint(
            run_dir / BEST_FILE, monitor="val_dice", mode="max", save_best_only=True, initial_value_threshold=best_so_far
        ),
        keras.callbacks.EarlyStopping(monitor="val_dice", mode="max", patience=config.patience),
        keras.callbacks.CSVLogger(run_dir / "log.csv", append=True),
        keras.callbacks.BackupAndRestore(run_dir / "backup", delete_checkpoint=False),
    ]
    if report is not None:
        callbacks.append(ProgressCallback(report, config.epochs, steps if report_batches else None))
    (run_dir / "fit_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    if start_epoch:
        log.info("resuming %s after %d finished epoch(s)", run_dir, start_epoch)
    # shuffle=False: the dataset shuffles itself, seeded per epoch (Keras ignores the flag for datasets, but warns)
    model.fit(data, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose, shuffle=False)
    history = read_log(run_dir / "log.csv")
    best = max(history, key=lambda row: row.get("val_dice", -1.0)) if history else {}
    if (run_dir / BEST_FILE).is_file():
        model.load_weights(run_dir / BEST_FILE)
    return {"best_val_dice": best.get("val_dice"), "best_epoch": int(best.get("epoch", -1)) + 1, "epochs_run": len(history), "history": history}


def _optimizer(config: FitConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * (0.1 if warmup else 1.0),
        decay_steps=max(total - warmup, 1),
        alpha=config.min_lr_ratio,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)
    if config.weight_decay:
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(learning_rate=schedule)


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a Keras CSV log as dicts of floats (empty when there is none)."""
    import csv

    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
