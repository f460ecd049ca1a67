"""Fine-tune a model bundle on expert corrections from a new clinic.

The corrections come from a retraining set made in napari or from any folder
of image/mask pairs the reader understands (:func:`~glassbox_xai.data.layout.discover`).
Adaptation is a few cheap steps, each one a setting of :class:`FinetuneSettings`:

1. AdaBN (Li et al. 2016): re-estimate every batch-normalisation layer's
   statistics on the corrected photographs (no labels used);
2. fine-tune the decoder (or every layer) on the corrections, mixed with as many
   original pairs against forgetting, the batch-norm statistics of step 1 kept;
3. optionally, re-choose the probability threshold that maximises mean Dice on the
   corrections (off by default: measured on PH2, the parent's threshold does as well
   there and forgets less on the parent's data).

The result is a new bundle whose card records its parent's weights hash, the
training set's hash and the settings, registered as a model version here (the
command line and the Fine-tune widget both get it registered from this one place).
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..data.layout import NoImagesError, Sample, discover
from ..model.card import ModelCard
from .store import RetrainingSet, StoreError

# TensorFlow/Keras (learn.*, model.bundle) load inside the functions that train, so the
# command line can read the defaults below without starting TensorFlow.

AUGMENT = {"horizontal_flip": {"p": 0.5}, "vertical_flip": {"p": 0.5}, "rotation": {"p": 0.5}, "brightness": {"p": 0.3}, "contrast": {"p": 0.3}}
# the shipped dice recipe's augmentations (training/configs/dice.yaml), for measuring whether the light set above makes the fit drift
TRAINING_AUGMENT = {"horizontal_flip": {"p": 0.5}, "vertical_flip": {"p": 0.5}, "rotation": {"p": 0.6, "min": -180, "max": 180},
                    "zoom": {"p": 0.4, "min": 0.85, "max": 1.2}, "brightness": {"p": 0.4, "min": -0.15, "max": 0.15},
                    "contrast": {"p": 0.4, "min": -0.15, "max": 0.15}, "saturation": {"p": 0.3, "min": -20, "max": 20},
                    "hue": {"p": 0.3, "min": -6, "max": 6}, "gamma": {"p": 0.3, "min": 80, "max": 120}}
AUGMENTS = {"light": AUGMENT, "training": TRAINING_AUGMENT}
OPTIMIZERS = ("adam", "sgd")  # learn.fit.OPTIMIZERS, spelt here so the CLI checks it without importing Keras
THRESHOLDS = tuple(np.round(np.arange(0.10, 0.91, 0.05), 2))
Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FinetuneSettings:
    """How a parent adapts to corrections. Defaults: measured on PH2 (benchmarks/hitl_ph2.py).

    Attributes:
        epochs: passes over the corrections plus mixed original pairs.
        learning_rate: peak Adam learning rate (cosine decay, no warm-up).
        batch_size: images per step (fewer when the set is smaller).
        loss: loss name for :func:`make_loss`.
        mix_ratio: original pairs mixed in per correction, when an original folder is given.
        validation_share: share of corrections held out to pick the best epoch
            (0: train on all, keep the last epoch).
        seed: seeds the split, the mix, weights updates and augmentation.
        adapt_batchnorm: re-estimate batch-norm statistics on the corrected photographs first (AdaBN).
        freeze_batchnorm: keep the batch-norm statistics fixed while fitting.
        train_layers: ``"all"`` or ``"decoder"`` (encoder frozen: attention gates, decoder and output learn).
        choose_threshold: re-choose the probability threshold on the corrections after fitting. Off by
            default: on PH2 the fitted model scored the same at the parent's threshold (paired +0.0018 +- 0.0024
            after 20 corrections, +0.0007 +- 0.0035 after 50, 5 splits) and forgot less on ISIC (-0.0166
            instead of -0.0234): a threshold chosen on the images just trained on overfits them.
        weight_average: share of the fitted weights in the result, the rest the parent's
            (weight-space interpolation as in WiSE-FT, Wortsman et al. 2022); 1.0 keeps the fitted
            model as it is, smaller values keep more of what the parent knew.
        original_targets: what the mixed original pairs are fitted to: ``"truth"`` (their expert masks) or
            ``"parent"`` (the parent's own masks at its threshold, as in Learning without Forgetting,
            Li & Hoiem 2017: the model is asked to keep doing on the old images what it did).
        consolidation: strength of elastic weight consolidation (Kirkpatrick et al. 2017,
            :mod:`.consolidation`): each weight is pulled back to the parent's value in proportion to how
            much the parent's masks of the original photographs depend on it. 0 (default) is off;
            it needs original pairs. Measured on PH2 (2 splits, README): at every amount of
            forgetting it gained less than ``weight_average`` 0.5, so it is off and not offered by the CLI.
        augment: ``"light"`` (flips, rotation, brightness, contrast) or ``"training"`` (the shipped dice
            recipe's set: also zoom, saturation, hue and gamma).
        optimizer: ``"adam"`` or ``"sgd"`` (:class:`~glassbox_xai.learn.fit.FitConfig`; SGD needs a
            learning rate on its own scale, not Adam's).
    """

    epochs: int = 3
    learning_rate: float = 3e-4
    batch_size: int = 8
    loss: str = "bce_dice"
    mix_ratio: float = 0.5
    validation_share: float = 0.0
    seed: int = 7
    adapt_batchnorm: bool = False
    freeze_batchnorm: bool = True
    train_layers: str = "all"
    choose_threshold: bool = False
    weight_average: float = 1.0
    original_targets: str = "truth"
    consolidation: float = 0.0
    augment: str = "light"
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        if self.train_layers not in ("all", "decoder"):
            raise ValueError(f"train_layers must be 'all' or 'decoder', got {self.train_layers!r}")
        if not 0.0 <= self.validation_share < 1.0 or self.mix_ratio < 0 or self.epochs < 0:
            raise ValueError(f"bad fine-tune settings: {self}")
        if not 0.0 <= self.weight_average <= 1.0:
            raise ValueError(f"weight_average is the fitted weights' share, in [0, 1]; got {self.weight_average}")
        if self.original_targets not in ("truth", "parent"):
            raise ValueError(f"original_targets must be 'truth' or 'parent', got {self.original_targets!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be {' or '.join(map(repr, OPTIMIZERS))}, got {self.optimizer!r}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {sorted(AUGMENTS)}, got {self.augment!r}")
        if self.consolidation < 0:
            raise ValueError(f"consolidation is a strength, 0 or more; got {self.consolidation}")


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


def is_retraining_set(folder: str | Path) -> bool:
    """Whether ``folder`` is a retraining set made by the Review widget (it has sidecars)."""
    return (Path(folder) / "sidecars").is_dir()


def training_samples(source: RetrainingSet | str | Path) -> tuple[list[Sample], str]:
    """The (image, corrected mask) pairs of a retraining set or of any annotated folder, with a
    sha256 that identifies the set. (Each mask is checked, binary and of its image's size, as
    :func:`~glassbox_xai.learn.dataset.load_pairs` reads it.)

    Raises:
        StoreError: a retraining set with no corrections.
        NoImagesError: a folder that does not exist or holds no image/mask pairs.
    """
    if isinstance(source, RetrainingSet) or is_retraining_set(source):
        store = source if isinstance(source, RetrainingSet) else RetrainingSet(source)
        return set_samples(store), store.manifest()["sha256"]
    folder = Path(source)
    samples = [s for s in discover(folder) if s.mask is not None]
    if not samples:
        raise NoImagesError(f"no image/mask pairs in {folder}: expected images with <id>_segmentation.png masks beside them, "
                            "the ISIC 2018 layout, or a retraining set made in napari")
    return samples, folder_sha256(samples)


def folder_sha256(samples: list[Sample]) -> str:
    """A hash of the pairs' names and file contents (what the card records as the set)."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.id):
        digest.update(sample.id.encode())
        for path in (sample.image, sample.mask):
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


# --- the adaptation steps ------------------------------------------------------------------

def adapt_batchnorm(model, images: np.ndarray, batch_size: int = 32) -> int:
    """AdaBN: set every batch-norm layer's moving statistics to those of ``images``
    (N, size, size, 3 float in [0, 1]): one forward pass in training mode per chunk, dropout
    off, each chunk weighted by its size. Returns the number of layers re-estimated."""
    import keras

    from ..model.attention_unet import batchnorm_layers

    norms = batchnorm_layers(model)
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout) or "Dropout" in type(layer).__name__]
    saved = [(layer.momentum, layer.trainable) for layer in norms], [layer.rate for layer in dropouts]
    try:
        for layer in norms:
            layer.trainable = True
        for layer in dropouts:
            layer.rate = 0.0
        seen = 0
        for start in range(0, len(images), batch_size):
            chunk = np.asarray(images[start : start + batch_size], dtype=np.float32)
            for layer in norms:  # moving = running mean over chunks
                layer.momentum = seen / (seen + len(chunk))
            model(chunk, training=True)
            seen += len(chunk)
    finally:
        for layer, (momentum, trainable) in zip(norms, saved[0]):
            layer.momentum, layer.trainable = momentum, trainable
        for layer, rate in zip(dropouts, saved[1]):
            layer.rate = rate
    return len(norms)


def freeze_batchnorm(model) -> int:
    """Make every batch normalisation layer non-trainable: Keras then runs it in inference
    mode, with the parent's moving statistics, so a few small batches of corrections
    cannot drag them. Returns the number of layers frozen."""
    from ..model.attention_unet import batchnorm_layers

    norms = batchnorm_layers(model)
    for layer in norms:
        layer.trainable = False
    return len(norms)


def freeze_encoder(model) -> int:
    """Make the encoder (and bottleneck) layers non-trainable; returns how many were frozen."""
    from ..model.attention_unet import layer_stage

    frozen = [layer for layer in model.layers if layer_stage(layer.name) == "encoder" and layer.weights]
    for layer in frozen:
        layer.trainable = False
    return len(frozen)


def model_logits(model, images: np.ndarray, tta: bool, batch_size: int = 16) -> np.ndarray:
    """Logits (N, size, size) at model resolution, averaged over flips when ``tta`` (as :class:`Segmenter` does)."""

    def run(x):
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)[..., 0]

    x = np.asarray(images, dtype=np.float32)
    out = run(x)
    if tta:
        out = (out + run(x[:, :, ::-1])[:, :, ::-1] + run(x[:, ::-1])[:, ::-1] + run(x[:, ::-1, ::-1])[:, ::-1, ::-1]) / 4.0
    return out


def model_probabilities(model, images: np.ndarray, tta: bool) -> np.ndarray:
    """Lesion probabilities (N, size, size) of uint8 photographs at model resolution (:func:`model_logits`)."""
    from ..inference import sigmoid

    return sigmoid(model_logits(model, images.astype(np.float32) / 255.0, tta))


def interpolate_weights(model, start: list[np.ndarray], share: float) -> None:
    """Set ``model``'s weights to ``share * current + (1 - share) * start`` (floating-point weights;
    any other kind of variable keeps its current value)."""
    current = model.get_weights()
    if len(current) != len(start):
        raise ValueError(f"expected {len(current)} weight arrays to interpolate with, got {len(start)}")
    model.set_weights([share * now + (1.0 - share) * then if np.issubdtype(now.dtype, np.floating) else now
                       for now, then in zip(current, start)])


def best_threshold(probabilities: np.ndarray, masks: np.ndarray, thresholds=THRESHOLDS) -> tuple[float, dict[float, float]]:
    """The threshold with the highest mean per-image Dice (ties: nearest 0.5), and the Dice of each."""
    from ..learn.fit import mean_dice

    truth = masks.astype(bool)
    table = {float(t): mean_dice(probabilities > t, truth) for t in thresholds}
    best = max(table, key=lambda t: (round(table[t], 6), -abs(t - 0.5)))
    return best, table


def adapt(model, corrections: Arrays, original: Arrays | None, settings: FinetuneSettings, run_dir: str | Path,
          tta: bool = False, report: Callable[[int, int, dict], None] | None = None, verbose: int = 0,
          parent_threshold: float = 0.5) -> dict[str, Any]:
    """Adapt ``model`` in place to ``corrections`` (uint8 images, {0,1} masks at model resolution),
    mixed with ``original`` pairs; returns the fit summary plus the chosen ``threshold`` (or None).
    With ``settings.original_targets == "parent"`` the original pairs' masks are replaced by the
    model's own (before fitting) at ``parent_threshold``."""
    from ..learn.fit import FitConfig, fit
    from ..learn.losses import make_loss

    images, masks = corrections
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(images))
    n_val = round(settings.validation_share * len(images)) if len(images) > 1 else 0
    val_idx, train_idx = order[:n_val], (order[n_val:] if n_val < len(images) else order)
    train = (images[train_idx], masks[train_idx])
    val = (images[val_idx], masks[val_idx]) if n_val else train
    if original is not None and settings.mix_ratio > 0:
        take = min(len(original[0]), round(settings.mix_ratio * len(train_idx)))
        pick = rng.choice(len(original[0]), size=take, replace=False)
        kept = original[1][pick]
        if settings.original_targets == "parent":
            kept = (model_probabilities(model, original[0][pick], tta) > parent_threshold).astype(original[1].dtype)
        train = (np.concatenate([train[0], original[0][pick]]), np.concatenate([train[1], kept]))
    summary: dict[str, Any] = {"n_corrections_trained": len(train_idx), "n_validation": int(n_val),
                               "n_original_mixed": len(train[0]) - len(train_idx)}
    parent_weights = model.get_weights() if settings.weight_average < 1.0 else None  # numpy copies
    if settings.adapt_batchnorm:
        summary["batchnorm_adapted"] = adapt_batchnorm(model, images.astype(np.float32) / 255.0)
    if settings.freeze_batchnorm:
        freeze_batchnorm(model)
    if settings.train_layers == "decoder":
        summary["encoder_layers_frozen"] = freeze_encoder(model)
    if settings.epochs:
        config = FitConfig(epochs=settings.epochs, batch_size=min(settings.batch_size, len(train[0])), learning_rate=settings.learning_rate,
                           warmup_epochs=0, patience=settings.epochs, seed=settings.seed, optimizer=settings.optimizer)
        with _consolidation(model, original, settings, tta, parent_threshold) as pulled:
            summary.update(fit(model, make_loss(settings.loss), train, val, config, AUGMENTS[settings.augment], Path(run_dir), report=report, verbose=verbose,
                               report_batches=True))
        if pulled:
            summary["consolidated_variables"] = pulled
    if parent_weights is not None:
        interpolate_weights(model, parent_weights, settings.weight_average)
        summary["weight_average"] = settings.weight_average
    summary["threshold"] = None
    if settings.choose_threshold:
        summary["threshold"], summary["threshold_dice"] = best_threshold(model_probabilities(model, images, tta), masks)
    return summary


FISHER_IMAGES = 64


@contextmanager
def _consolidation(model, original: Arrays | None, settings: FinetuneSettings, tta: bool, parent_threshold: float) -> Iterator[int]:
    """EWC around the fit when ``settings.consolidation`` > 0 (yields the number of pulled variables,
    0 when off): the Fisher diagonal of the trainable weights comes from up to :data:`FISHER_IMAGES`
    original photographs against the parent's own masks of them."""
    if not settings.consolidation:
        yield 0
        return
    if original is None or not len(original[0]):
        raise ValueError("consolidation needs original pairs (the photographs the parent was trained on) to weigh its weights")
    from ..learn.losses import make_loss
    from .consolidation import consolidated, fisher_diagonal

    photographs = original[0][:FISHER_IMAGES]
    targets = model_probabilities(model, photographs, tta) > parent_threshold
    fisher = fisher_diagonal(model, photographs.astype(np.float32) / 255.0, targets, make_loss(settings.loss))
    with consolidated(model, fisher, settings.consolidation) as pulled:
        yield pulled


def finetune(parent_bundle: str | Path, source: RetrainingSet | str | Path, out_dir: str | Path,
             settings: FinetuneSettings = FinetuneSettings(), original: str | Path | None = None, report=None, verbose: int = 0,
             bundle_dir: str | Path | None = None, register: bool = True) -> tuple[Path, dict[str, Any]]:
    """Fine-tune ``parent_bundle`` on a retraining set or annotated folder (plus original pairs).

    The new bundle goes to ``bundle_dir`` when given, else ``<out_dir>/<variant>-finetuned-<time>/bundle``
    (the fit's log and checkpoints beside it in ``run``). With ``register`` it is added to this
    machine's model versions (``summary["version"]`` is its name; simulations pass ``False``).
    ``report(epoch, epochs, logs)`` is called after each epoch, and within an epoch with
    ``logs["batch"]`` and ``logs["steps"]`` (a long epoch is not a silence).
    Returns the bundle folder and the summary.

    Raises:
        StoreError, NoImagesError: see :func:`training_samples`.
        MaskError: a mask that is not binary or whose size differs from its image (the message names the file).
    """
    from ..learn.dataset import load_pairs
    from ..learn.losses import describe_loss
    from ..model.bundle import load_bundle, save_bundle

    samples, set_sha = training_samples(source)  # masks are checked (binary, image size) as they load, naming the file
    parent = load_bundle(parent_bundle)
    size = parent.config.input_size
    mixed = None
    if original is not None and settings.mix_ratio > 0:
        pool = discover(original, require_masks=True)
        take = np.random.default_rng(settings.seed).choice(len(pool), size=min(len(pool), round(settings.mix_ratio * len(samples))), replace=False)
        mixed = load_pairs([pool[i] for i in sorted(take)], size)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{parent.card.variant}-finetuned-{stamp}"
    bundle_dir = Path(bundle_dir) if bundle_dir else Path(out_dir) / name / "bundle"
    run_dir = bundle_dir.parent / f"{bundle_dir.name}-run" if bundle_dir.name != "bundle" else bundle_dir.parent / "run"
    tta = bool((parent.card.inference or {}).get("tta", False))
    summary = adapt(parent.model, load_pairs(samples, size), mixed, settings, run_dir, tta=tta, report=report, verbose=verbose,
                    parent_threshold=parent.card.threshold)
    threshold = summary["threshold"] if summary["threshold"] is not None else parent.card.threshold
    card = ModelCard(
        variant="finetuned",
        loss=describe_loss(settings.loss),
        threshold=threshold,
        name=f"{parent.card.name or parent.card.variant} fine-tuned {stamp}",
        training_data={"source": str(Path(source.root if isinstance(source, RetrainingSet) else source).resolve()), "n_images": summary["n_corrections_trained"],
                       "n_original_mixed": summary["n_original_mixed"], "sha256": set_sha, "validation_corrections": summary["n_validation"],
                       "original": str(original) if original else None, "finetune_settings": asdict(settings)},
        validation_metrics={"dice_model_resolution_on_corrections_at_threshold": float(summary.get("threshold_dice", {}).get(threshold, float("nan")))
                            if summary["threshold"] is not None else None,
                            "best_val_dice_model_resolution": summary.get("best_val_dice")},
        parent=parent.card.weights_sha256,
        inference=parent.card.inference,
        notes=json.dumps({"parent_path": str(parent.path), "parent_variant": parent.card.variant, "parent_threshold": parent.card.threshold,
                          "settings": asdict(settings)}),
    )
    for layer in parent.model.layers:  # the child loads like any bundle, every layer trainable again
        layer.trainable = True
    save_bundle(parent.model, parent.config, card, bundle_dir)
    summary["version"] = None
    if register:
        from ..model import versions

        summary["version"] = versions.register(bundle_dir)
    return bundle_dir, summary
