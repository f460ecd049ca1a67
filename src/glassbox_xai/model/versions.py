"""Model versions made on this machine (fine-tuned bundles) and which model is active.

``$GLASSBOX_HOME/versions.json`` (default ``~/.glassbox-xai``) lists every
registered version by name with its bundle folder, parent hash and creation
time, and names the active model: a shipped variant or a version. Older
versions are never removed: switching back is choosing them again. Pure
Python: reading it never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..data.io import atomic_write
from .card import CARD_FILE, BundleError, read_card
from .registry import VARIANT_NAMES, NoTrainedModelError, installed_bundles

VERSIONS_FILE = "versions.json"


def home() -> Path:
    return Path(os.environ.get("GLASSBOX_HOME") or Path.home() / ".glassbox-xai")


def _read(strict: bool = False) -> dict[str, Any]:
    """The version list. A damaged file reads as empty with a warning (the widgets still
    open with the shipped models); with ``strict`` (before writing) it raises instead,
    so it is never overwritten."""
    path = home() / VERSIONS_FILE
    if not path.is_file():
        return {"versions": {}, "active": None}
    try:
        data = json.loads(path.read_text())
        return {"versions": dict(data.get("versions", {})), "active": data.get("active")}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        message = f"cannot read the model version list {path}: {exc}; fix or delete it (the shipped models still work)"
        if strict:
            raise BundleError(message) from None
        warnings.warn(message, stacklevel=2)
        return {"versions": {}, "active": None}


def _write(data: dict[str, Any]) -> None:
    folder = home()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / VERSIONS_FILE, lambda stream: stream.write(json.dumps(data, indent=2).encode("utf-8")))


def versions() -> dict[str, dict[str, Any]]:
    """Registered versions whose bundle is still on disk, oldest first."""
    found = {name: entry for name, entry in _read()["versions"].items() if (Path(entry["path"]) / CARD_FILE).is_file()}
    return dict(sorted(found.items(), key=lambda item: item[1].get("created", "")))


def register(bundle: str | Path, name: str | None = None) -> str:
    """Add a bundle folder to the versions (named after its run folder); return its name."""
    bundle = Path(bundle).resolve()
    card = read_card(bundle)  # BundleError: not a bundle
    name = name or (bundle.parent.name if bundle.name == "bundle" else bundle.name)
    if name in VARIANT_NAMES:
        raise ValueError(f"a version cannot be named {name!r}: that is a shipped variant")
    data = _read(strict=True)
    data["versions"][name] = {"path": str(bundle), "parent": card.parent, "variant": card.variant,
                              "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    _write(data)
    return name


def label_for(bundle: str | Path, variant: str) -> str:
    """What layers and tables call a model: a registered version's name (two versions of one
    variant must not share layer names), else the card's variant (``dice``, ``custom``...)."""
    where = str(Path(bundle).resolve())
    for name, entry in versions().items():
        if entry["path"] == where:
            return name
    return variant


def model_names() -> list[str]:
    """Shipped variants, then registered versions (oldest first)."""
    installed = installed_bundles()
    return [v for v in VARIANT_NAMES if v in installed] + list(versions())


def active() -> str | None:
    """The active model's name, when one was chosen and still exists."""
    name = _read()["active"]
    return name if name in model_names() else None


def set_active(name: str) -> None:
    """Make a shipped variant or a registered version the default model of every widget."""
    if name not in model_names():
        raise NoTrainedModelError(f"no model named {name!r}; expected one of {', '.join(model_names())}")
    data = _read(strict=True)
    data["active"] = name
    _write(data)


def bundle_for(name: str) -> Path:
    """The bundle folder of a shipped variant or a registered version."""
    installed = installed_bundles()
    if name in installed:
        return installed[name][0]
    found = versions()
    if name in found:
        return Path(found[name]["path"])
    raise NoTrainedModelError(f"no model named {name!r}; expected one of {', '.join(model_names()) or 'none installed'}")
