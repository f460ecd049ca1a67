"""Fine-tune a model bundle on a retraining set of expert corrections.

The result is a new bundle whose card records its parent's weights hash, the
retraining set's manifest hash and the settings. Original training pairs can be
mixed in so the model does not forget what it knew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data.layout import Sample, discover
from ..learn.dataset import load_pairs
from ..learn.fit import FitConfig, fit
from ..learn.losses import describe_loss, make_loss
from ..model.bundle import load_bundle, save_bundle
from ..model.card import ModelCard
from .store import RetrainingSet, StoreError

AUGMENT = {"horizontal_flip": {"p": 0.5}, "vertical_flip": {"p": 0.5}, "rotation": {"p": 0.5}, "brightness": {"p": 0.3}, "contrast": {"p": 0.3}}


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 5
    learning_rate: float = 3e-4
    batch_size: int = 8
    loss: str = "bce_dice"
    mix_ratio: float = 1.0  # original pairs per correction, when an original folder is given
    validation_share: float = 0.2
    seed: int = 7
    freeze_batchnorm: bool = False  # keep the parent's normalisation statistics (small sets, small batches)


def set_samples(store: RetrainingSet, manifest: dict[str, Any] | None = None) -> list[Sample]:
    """The corrections of a retraining set as samples: each image with the mask of its latest
    accepted version (the immutable file in ``history/``, checked against its sidecar's sha256),
    never the ``masks/`` copy.

    Raises:
        StoreError: the set is empty, or an accepted mask differs from its sidecar.
    """
    samples = []
    for image_id, item in (manifest or store.manifest())["items"].items():
        image = Path(item["image"]["path"])
        image = image if image.is_absolute() else store.root / image
        samples.append(Sample(image_id, image, store.verified_mask(image_id, item["version"])))
    if not samples:
        raise StoreError(f"the retraining set at {store.root} holds no corrections yet; accept some corrected masks first")
    return samples


def finetune(parent_bundle: str | Path, store: RetrainingSet, out_dir: str | Path, settings: FinetuneSettings = FinetuneSettings(),
             original: str | Path | None = None, report=None, verbose: int = 0) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ``parent_bundle`` on ``store`` (plus original pairs); return the new bundle's folder and the fit summary."""
    parent = load_bundle(parent_bundle)
    corrections = set_samples(store)
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(corrections))
    n_val = max(1, round(settings.validation_share * len(corrections))) if len(corrections) > 1 else 0
    val = [corrections[i] for i in order[:n_val]] or corrections
    train = [corrections[i] for i in order[n_val:]] or corrections
    mixed = list(train)
    if original is not None:
        pool = discover(original, require_masks=True)
        take = min(len(pool), round(settings.mix_ratio * len(train)))
        mixed += [pool[i] for i in rng.choice(len(pool), size=take, replace=False)]
    size = parent.config.input_size
    train_arrays, val_arrays = load_pairs(mixed, size), load_pairs(val, size)
    batch = min(settings.batch_size, len(mixed))
    config = FitConfig(epochs=settings.epochs, batch_size=batch, learning_rate=settings.learning_rate, warmup_epochs=0,
                       patience=max(settings.epochs, 1), seed=settings.seed)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(out_dir) / f"{parent.card.variant}-finetuned-{stamp}"
    if settings.freeze_batchnorm:
        freeze_batchnorm(parent.model)
    summary = fit(parent.model, make_loss(settings.loss), train_arrays, val_arrays, config, AUGMENT, run_dir / "run", report=report, verbose=verbose)
    manifest = store.manifest()
    card = ModelCard(
        variant="finetuned",
        loss=describe_loss(settings.loss),
        threshold=parent.card.threshold,
        name=f"{parent.card.name or parent.card.variant} fine-tuned {stamp}",
        training_data={"source": str(store.root), "n_images": len(train), "n_original_mixed": len(mixed) - len(train),
                       "sha256": manifest["sha256"], "validation_corrections": len(val)},
        validation_metrics={"dice_model_resolution_on_held_out_corrections": float(summary["best_val_dice"] or 0.0)},
        parent=parent.card.weights_sha256,
        inference=parent.card.inference,
        notes=f"fine-tuned from {parent.path} ({parent.card.variant}); settings {settings.__dict__}; original mix {original}",
    )
    save_bundle(parent.model, parent.config, card, run_dir / "bundle")
    return run_dir / "bundle", summary


def freeze_batchnorm(model) -> int:
    """Make every batch normalisation layer non-trainable: Keras then runs it in inference
    mode, with the parent's moving statistics, so a few small batches of corrections
    cannot drag them. Returns the number of layers frozen."""
    from ..model.attention_unet import batchnorm_layers

    norms = batchnorm_layers(model)
    for layer in norms:
        layer.trainable = False
    return len(norms)
