"""Worker operations of the human-in-the-loop widgets: rank a folder by uncertainty,
fine-tune a model on a retraining set (with before/after evaluation).

They run in the model worker process (TensorFlow lives there), as generators of
:class:`~glassbox_xai.inference.Progress` like every worker op.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Generator

from ..jobs import Progress


class _Stop(Exception):
    """Raised inside Keras' fit (from the epoch callback) when the job is cancelled."""


def op_rank(state, bundle: str, folder: str, passes: int = 8) -> Generator[Progress, None, dict]:
    """Score every image of ``folder`` by boundary and Monte Carlo dropout uncertainty, most uncertain first."""
    from ..data.layout import discover
    from ..hitl.uncertainty import rank_by_uncertainty
    from .summary import model_summary

    segmenter = state.segmenter(bundle)
    ranked = yield from rank_by_uncertainty(segmenter, discover(folder), passes)
    return {"ranked": [{"id": r.id, "boundary": r.boundary, "mc_dropout": r.mc_dropout, "score": r.score} for r in ranked],
            "device": segmenter.device, "card": model_summary(segmenter.bundle)}


EPOCH_UNITS = 100  # progress units per epoch: the bar moves batch by batch


def op_finetune(state, bundle: str, set_dir: str, epochs: int | None = None, original: str | None = None,
                held_out: str | None = None, weight_average: float | None = None) -> Generator[Progress, None, dict]:
    """Fine-tune ``bundle`` on the retraining set at ``set_dir`` into ``<set>/models`` with the
    measured defaults of :class:`FinetuneSettings` (``epochs`` and ``weight_average`` override theirs),
    and register the new version; with ``held_out`` (a folder with masks), evaluate the parent and the
    new model on it. Progress moves after every batch, so a long epoch is never a silence."""
    from ..data.layout import discover
    from ..hitl.finetune import FinetuneSettings, finetune
    from ..hitl.store import RetrainingSet

    overrides = {k: v for k, v in (("epochs", epochs), ("weight_average", weight_average)) if v is not None}
    settings = FinetuneSettings(**overrides)
    store = RetrainingSet(set_dir)
    held = discover(held_out, require_masks=True) if held_out else []  # fail before training, not after
    total_units = (settings.epochs + 2 * bool(held)) * EPOCH_UNITS
    yield Progress(0, total_units, "loading the corrections")
    messages: queue.Queue = queue.Queue()
    stop = threading.Event()

    def report(epoch: int, total: int, logs: dict) -> None:
        if "batch" in logs:
            done = (epoch - 1) * EPOCH_UNITS + EPOCH_UNITS * logs["batch"] // max(logs["steps"], 1)
            messages.put(Progress(done, total_units, f"epoch {epoch}/{total}: batch {logs['batch']}/{logs['steps']}, loss {logs.get('loss', float('nan')):.3f}"))
        else:
            messages.put(Progress(epoch * EPOCH_UNITS, total_units,
                                  f"epoch {epoch}/{total}: held-out corrections Dice {logs.get('val_dice', float('nan')):.3f}"))
        if stop.is_set():
            raise _Stop

    def train() -> None:
        try:
            messages.put(("done", finetune(bundle, store, Path(set_dir) / "models", settings, original=original, report=report)))
        except BaseException as exc:  # handed to the generator, which re-raises it
            messages.put(("failed", exc))

    thread = threading.Thread(target=train, name="glassbox-finetune", daemon=True)
    thread.start()
    try:
        while True:
            item = messages.get()
            if isinstance(item, Progress):
                yield item
                continue
            if item[0] == "failed":
                raise item[1]
            new_bundle, summary = item[1]
            break
    finally:  # cancelled (generator closed) or failed: the training thread stops at its next epoch end
        stop.set()
        thread.join()  # (the client kills the worker if that takes longer than its grace period)
    result = {"bundle": str(new_bundle), "version": summary["version"], "best_val_dice": summary["best_val_dice"],
              "epochs_run": summary["epochs_run"], "threshold": summary["threshold"], "device": state.device or "CPU",
              "card": {"variant": "finetuned", "name": summary["version"], "label": summary["version"]}}
    if held:
        result["comparison"] = {}
        for n, (name, path) in enumerate((("before", bundle), ("after", str(new_bundle)))):
            yield Progress((settings.epochs + n) * EPOCH_UNITS, total_units, f"evaluating {name} fine-tuning on {len(held)} held-out images")
            result["comparison"][name] = yield from _evaluate(state, path, held, name)
    yield Progress(total_units, total_units, "done")
    return result


def _evaluate(state, bundle: str, samples, name: str) -> Generator[Progress, None, dict]:
    """Held-out macro metrics of one bundle; unreadable images are left out of both rows alike."""
    from ..comparison import evaluate_keeping_failures

    evaluation, _ = yield from evaluate_keeping_failures(state.segmenter(bundle), samples, name, 0, len(samples))
    return {key: value for key, value in evaluation.summary().items() if not isinstance(value, dict)}
