"""Turn a recipe into a trained model bundle (see ``python -m training --help``)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from glassbox_xai.data.layout import Sample, listed_samples
from glassbox_xai.learn.dataset import load_pairs
from glassbox_xai.learn.deep_supervision import supervised
from glassbox_xai.learn.fit import fit
from glassbox_xai.learn.losses import describe_loss, make_loss
from glassbox_xai.learn.recipe import Recipe, RecipeError
from glassbox_xai.model.attention_unet import build_attention_unet
from glassbox_xai.model.bundle import load_bundle, save_bundle
from glassbox_xai.model.card import ModelCard, manifest_sha256

from .grow import can_grow_blocks, can_grow_width, grow_blocks, grow_width

log = logging.getLogger("training")


def split_samples(recipe: Recipe, split: str, limit: int | None = None) -> list[Sample]:
    """The samples of the recipe's ``train`` or ``val`` split, in file order."""
    root = Path(recipe.data["root"])
    return listed_samples(root, root / recipe.data[split], limit)


def oversample(recipe: Recipe, train: list[Sample]) -> dict[str, Any] | None:
    """The positions in ``train`` of the ids that the recipe's ``data.oversample.ids`` lists, and how
    many times each is seen an epoch (None without ``oversample``).

    Raises:
        RecipeError: a listed id is not in the training split (it could be a validation image).
    """
    spec = recipe.data.get("oversample")
    if not spec:
        return None
    split = set((Path(recipe.data["root"]) / recipe.data["train"]).read_text().split())
    ids = Path(spec["ids"]).read_text().split()
    outside = [i for i in ids if i not in split]
    if outside:
        raise RecipeError(f"recipe {recipe.source}: {len(outside)} id(s) of {spec['ids']} are not in the training split "
                          f"{recipe.data['train']}, e.g. {outside[0]}")
    position = {s.id: i for i, s in enumerate(train)}  # a smoke run's first N training images hold only some of them
    return {"index": np.array([position[i] for i in ids if i in position], dtype=np.int64), "times": int(spec["times"])}


def train_recipe(recipe: Recipe, runs: Path, limit: int | None = None, strategy=None) -> dict[str, Any]:
    """Fit the recipe's model (resuming when possible) and save it as ``runs/<name>/bundle``.

    ``strategy`` (a ``tf.distribute`` strategy) builds and fits the model in its scope.
    """
    run_dir = runs / recipe.name
    train = split_samples(recipe, "train", limit)
    val = split_samples(recipe, "val", limit and max(limit // 4, 4))
    size = recipe.model.input_size
    cache = runs / "cache"
    train_arrays = load_pairs(train, size, cache)
    oversampled = oversample(recipe, train)
    if oversampled:
        repeat = np.concatenate([np.arange(len(train))] + [oversampled["index"]] * (oversampled["times"] - 1))
        train_arrays = (train_arrays[0][repeat], train_arrays[1][repeat])
        log.info("%s: %d listed training images seen %d times an epoch", recipe.name, len(oversampled["index"]), oversampled["times"])
    val_arrays = load_pairs(val, size, cache)
    log.info("%s: %d training and %d validation pairs at %d px", recipe.name, len(train), len(val), size)

    keras.utils.set_random_seed(recipe.fit.seed)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        parent_card = None
        if recipe.parent:
            parent = load_bundle(runs / recipe.parent / "bundle")
            parent_card = parent.card
            if parent.config == recipe.model:
                model = parent.model
            elif can_grow_blocks(parent.config, recipe.model):
                model = grow_blocks(parent.model, recipe.model)  # blocks added to the parent: context starts at zero
            elif can_grow_width(parent.config, recipe.model):
                model = grow_width(parent.model, recipe.model, parent.config)  # wider stages computing the parent's logits
            else:
                raise ValueError(f"recipe {recipe.source}: model config differs from parent {recipe.parent}'s {parent.config}")
        else:
            model = build_attention_unet(recipe.model)
        trained, loss_weights = supervised(model, recipe.deep_supervision) if recipe.deep_supervision else (model, None)
        # with deep supervision the wrapper fits (and checkpoints) the auxiliary heads too; `model` shares its layers
        summary = fit(trained, make_loss(recipe.loss), train_arrays, val_arrays, recipe.fit, recipe.augment, run_dir, loss_weights=loss_weights)

    card = ModelCard(
        variant=recipe.variant,
        loss=describe_loss(recipe.loss),
        threshold=recipe.threshold,
        name=recipe.name,
        training_data={
            "source": f"ISIC 2018 Task 1 training set, {recipe.data['train']}",
            "n_images": len(train),
            "sha256": manifest_sha256(s.id for s in train),
            "validation": recipe.data["val"],
            **({"oversampled": {"ids": str(recipe.data["oversample"]["ids"]), "n_images": len(oversampled["index"]),
                                "times": oversampled["times"]}} if oversampled else {}),
            **({"deep_supervision_weights": list(recipe.deep_supervision)} if recipe.deep_supervision else {}),
        },
        validation_metrics={"dice_model_resolution": float(summary["best_val_dice"] or 0.0)},
        parent=parent_card.weights_sha256 if parent_card else None,
        notes=f"recipe {recipe.source}; best epoch {summary['best_epoch']} of {summary['epochs_run']}. {recipe.notes}".strip(),
    )
    save_bundle(model, recipe.model, card, run_dir / "bundle", overwrite=True)
    log.info("%s: bundle written to %s", recipe.name, run_dir / "bundle")
    return {**summary, "bundle": str(run_dir / "bundle")}
