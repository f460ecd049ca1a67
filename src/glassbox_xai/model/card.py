"""Model cards and bundle integrity checks, in pure Python (no TensorFlow).

A model bundle is a folder::

    <bundle>/model.keras   the network (built-in Keras layers only; loads in safe mode)
    <bundle>/config.json   the :class:`ModelConfig` it was built from
    <bundle>/card.json     this card: provenance, metrics and sha256 of both files above

Reading a card and checking the hashes needs no TensorFlow, so ``glassbox info``
and the napari process can list bundles cheaply.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .config import ConfigError, ModelConfig

BUNDLE_FORMAT = "glassbox-xai-bundle/1"
WEIGHTS_FILE = "model.keras"
CONFIG_FILE = "config.json"
CARD_FILE = "card.json"
VARIANTS = ("base", "dice", "balanced", "recall", "finetuned", "custom")


class BundleError(RuntimeError):
    """A model bundle is missing, incomplete, corrupt or has been tampered with."""


@dataclass
class ModelCard:
    """Provenance of one model bundle, saved as ``card.json``.

    Attributes:
        variant: one of :data:`VARIANTS`.
        loss: the training loss, e.g. ``"dice"`` or ``"tversky(alpha=0.3, beta=0.7)"``.
        threshold: default probability threshold for the binary mask.
        training_data: ``{"n_images": int, "sha256": str, "source": str}``; see
            :func:`manifest_sha256`.
        validation_metrics: macro-averaged metrics on the validation split.
        parent: ``weights_sha256`` of the bundle this one was fine-tuned from.
        software: versions of Python and the libraries that wrote the bundle.
        weights_sha256 / config_sha256: sha256 of ``model.keras`` / ``config.json``.
        created: ISO 8601 UTC time the bundle was written.
        inference: default inference options, ``{"tta": bool or "flips" or "d4", "postprocess": bool, "refine": bool}``
            (see :class:`glassbox_xai.inference.Segmenter`).
        calibration: how far the pixel probabilities can be taken at their word, measured by
            ``training/calibration.py`` (see :mod:`glassbox_xai.calibration`): ``temperature``
            (the logits are divided by it for the reported probability and confidence maps;
            the mask keeps ``threshold`` on the uncalibrated probability), ``ece`` at that
            temperature and ``ece_uncalibrated``, ``uncertainty_auroc``, ``split``, ``n_bins``
            and ``reliability`` (per bin at the temperature: ``confidence``, ``frequency`` and
            ``share`` of pixels). Empty: not measured, temperature 1.
    """

    variant: str
    loss: str
    threshold: float = 0.5
    name: str = ""
    training_data: dict[str, Any] = field(default_factory=dict)
    validation_metrics: dict[str, float] = field(default_factory=dict)
    parent: str | None = None
    software: dict[str, str] = field(default_factory=dict)
    weights_sha256: str = ""
    config_sha256: str = ""
    created: str = ""
    notes: str = ""
    inference: dict[str, bool | str] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    format: str = BUNDLE_FORMAT

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise BundleError(f"card variant {self.variant!r} is unknown; expected one of {', '.join(VARIANTS)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not 0.0 < float(self.threshold) < 1.0:
            raise BundleError(f"card threshold {self.threshold!r} is out of range; expected a number between 0 and 1 (exclusive)")
        temperature = self.calibration.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.0 < float(temperature) < 100.0:
            raise BundleError(f"card calibration temperature {temperature!r} is out of range; expected a positive number below 100")

    def summary(self) -> str:
        """One line for listings: variant, name, key validation metrics."""
        metrics = ", ".join(
            f"{k} {v:.4f}" for k, v in self.validation_metrics.items() if k in ("dice", "jaccard", "threshold_jaccard", "sensitivity")
        )
        label = self.variant if self.name in ("", self.variant) else f"{self.variant} ({self.name})"
        return f"{label:<12} {metrics or 'no validation metrics'}"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_sha256(ids: Iterable[str]) -> str:
    """A stable hash of a training set: sha256 of its sorted ids, one per line."""
    text = "\n".join(sorted(ids)) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def software_versions() -> dict[str, str]:
    """Versions of Python and the libraries that matter for reproducing a model."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("glassbox-xai", "keras", "tensorflow", "numpy", "albumentations"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def now_utc() -> str:
    """The current time as ISO 8601 UTC, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def write_card(card: ModelCard, folder: str | Path) -> None:
    """Write ``card.json`` into ``folder``."""
    Path(folder, CARD_FILE).write_text(json.dumps(asdict(card), indent=2) + "\n", encoding="utf-8")


def read_card(folder: str | Path) -> ModelCard:
    """Read the card of a bundle folder; errors name the file and the problem."""
    path = Path(folder, CARD_FILE)
    if not Path(folder).is_dir():
        raise BundleError(f"model bundle {folder} is not a folder (expected {WEIGHTS_FILE}, {CONFIG_FILE}, {CARD_FILE} inside)")
    if not path.is_file():
        raise BundleError(f"model bundle {folder} has no {CARD_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); the bundle is corrupt") from None
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is not a {BUNDLE_FORMAT} card")
    try:
        return ModelCard(**data)
    except TypeError as exc:
        raise BundleError(f"{path} has unexpected fields: {exc}") from None
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def verify_bundle(folder: str | Path) -> tuple[ModelCard, ModelConfig]:
    """Check that a bundle is complete and untouched; return its card and config.

    Raises:
        BundleError: a file is missing, or its sha256 differs from the card's
            (a truncated download, a disk error or an edit), or the config is invalid.
    """
    folder = Path(folder)
    card = read_card(folder)
    for name, expected in ((WEIGHTS_FILE, card.weights_sha256), (CONFIG_FILE, card.config_sha256)):
        path = folder / name
        if not path.is_file():
            raise BundleError(f"model bundle {folder} is missing {name}")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"{path} does not match its model card (sha256 {actual[:12]}..., card says "
                f"{expected[:12] or 'nothing'}...): the file is truncated, corrupt or was modified"
            )
    try:
        config = ModelConfig.load(folder / CONFIG_FILE)
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
    return card, config
