"""Save and load model bundles (``model.keras`` + ``config.json`` + ``card.json``).

Loading verifies both sha256 sums from the card before Keras reads a byte, then
loads with ``safe_mode=True`` so a model file can never run arbitrary code.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..tf_import import import_tensorflow

import_tensorflow()  # Keras imports TensorFlow: through here, so its C++ start-up lines are not printed
import keras  # noqa: E402

from .card import CONFIG_FILE, WEIGHTS_FILE, BundleError, ModelCard, now_utc, sha256_file, software_versions, verify_bundle, write_card  # noqa: E402
from .colour import ShadesOfGray  # noqa: E402,F401  (registers the layer before a bundle is loaded)
from .config import ModelConfig  # noqa: E402


@dataclass
class Bundle:
    """A loaded model with its config, card and folder."""

    model: keras.Model
    config: ModelConfig
    card: ModelCard
    path: Path


def save_bundle(model: keras.Model, config: ModelConfig, card: ModelCard, folder: str | Path, overwrite: bool = False) -> ModelCard:
    """Write ``model`` as a bundle in ``folder``; return the card with hashes filled in.

    The bundle is written to a temporary folder beside ``folder`` and renamed into
    place, so a crash or a full disk never leaves a half-written bundle.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise BundleError(f"{folder} already exists; choose a new folder or pass overwrite=True")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _without_optimizer(model).save(staging / WEIGHTS_FILE)
        config.save(staging / CONFIG_FILE)
        card = replace(
            card,
            weights_sha256=sha256_file(staging / WEIGHTS_FILE),
            config_sha256=sha256_file(staging / CONFIG_FILE),
            software=card.software or software_versions(),
            created=card.created or now_utc(),
        )
        write_card(card, staging)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return card


def _without_optimizer(model: keras.Model) -> keras.Model:
    """The model alone: a compiled model would also save its optimizer state (3x the size)."""
    if getattr(model, "optimizer", None) is None:
        return model
    return keras.Model(model.input, model.output, name=model.name)  # same layers, not compiled


def load_bundle(folder: str | Path) -> Bundle:
    """Load a bundle after checking its files against the card's hashes.

    Raises:
        BundleError: a file is missing, corrupt, tampered with, or does not hold
            the model its config describes.
    """
    folder = Path(folder)
    card, config = verify_bundle(folder)
    try:
        model = keras.saving.load_model(folder / WEIGHTS_FILE, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise BundleError(f"{folder / WEIGHTS_FILE} could not be loaded as a Keras model: {_short_load_error(exc)}") from None
    expected = (None, config.input_size, config.input_size, config.in_channels)
    if tuple(model.input_shape) != expected:
        raise BundleError(
            f"{folder / WEIGHTS_FILE} takes input {model.input_shape}, but {CONFIG_FILE} describes {expected}"
        )
    return Bundle(model=model, config=config, card=card, path=folder)


def _short_load_error(exc: Exception, limit: int = 300) -> str:
    """One line from Keras's nested deserialisation error (which repeats every enclosing
    layer's whole config): the innermost layer named, and the innermost reason."""
    import re

    text = str(exc)
    lines = text.rsplit("Exception encountered:", 1)[-1].strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    layers = re.findall(r"deserializing class '(\w+)' using config=\{'name': '([^']+)'", text) or [
        found for found in re.findall(r"'class_name': '(\w+)', 'config': \{'name': '([^']+)'", text) if not found[0].endswith("Policy")
    ]
    if layers:
        kind, name = layers[-1]
        reason = f"layer {name!r} ({kind}) in the archive's config.json: {reason}"
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."
