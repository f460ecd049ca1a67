"""Where model bundles live and how a variant name becomes a bundle folder.

Pure Python: finding and describing bundles never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from .card import CARD_FILE, BundleError, ModelCard, read_card

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"
VARIANT_NAMES = ("dice", "balanced", "recall")


class NoTrainedModelError(LookupError):
    """The requested variant has no trained model bundle installed."""


def installed_bundles(root: Path | None = None) -> dict[str, tuple[Path, ModelCard]]:
    """Bundles found under ``root`` (default: the shipped ones), by folder name.

    A folder whose card cannot be read is left out here; loading it directly
    gives the error that says why.
    """
    found: dict[str, tuple[Path, ModelCard]] = {}
    root = SHIPPED_DIR if root is None else root
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()):
        try:
            found[folder.name] = (folder, read_card(folder))
        except BundleError:
            continue
    return found


def resolve_bundle(variant: str | None = None, model: str | Path | None = None, root: Path | None = None) -> Path:
    """The bundle folder for an explicit ``model`` path or a shipped ``variant``.

    Raises:
        BundleError: ``model`` is given but is not a bundle folder.
        NoTrainedModelError: the variant has no trained bundle installed.
    """
    if model is not None:
        path = Path(model)
        if not path.exists():
            raise BundleError(f"model bundle {path} does not exist")
        return path
    variant = variant or "dice"
    if variant not in VARIANT_NAMES:
        raise NoTrainedModelError(f"unknown variant {variant!r}; expected one of {VARIANT_NAMES}")
    bundles = installed_bundles(root)
    if variant not in bundles:
        have = ", ".join(bundles) or "none"
        raise NoTrainedModelError(
            f"no trained model is installed for variant {variant!r} (installed: {have}). "
            "Train one with the recipes in training/, or pass --model BUNDLE_DIR."
        )
    return bundles[variant][0]
