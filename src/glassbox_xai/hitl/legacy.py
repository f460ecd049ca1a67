"""Reading the first layout of the retraining set (``glassbox-xai-retraining-set/1``) into version folders.

The first store kept the latest version in ``masks/``, ``predictions/`` and ``sidecars/``
and copied earlier ones to flat files ``history/<id>/v<N>_segmentation.png``,
``v<N>_prediction.png`` and ``v<N>_sidecar.json``. Opening such a set publishes each
version as ``history/<id>/v<N>/`` (the same staged, one-rename publication as a save),
then removes its flat files; a kill mid-migration is finished by the next opening.
An interrupted first-layout save could leave ``masks/`` holding a mask nobody accepted:
the mask whose sha256 the sidecar records is taken, wherever it is.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.card import sha256_file
from .durable import fsync_dir
from .store import MASK, PREDICTION, SIDECAR, StoreError, _json_bytes

if TYPE_CHECKING:
    from .store import RetrainingSet

LEGACY_FORMAT = "glassbox-xai-retraining-set/1"
_LEGACY_FILE = re.compile(r"^v(\d+)_(segmentation\.png|prediction\.png|sidecar\.json)$")

log = logging.getLogger(__name__)


def legacy_ids(store: RetrainingSet) -> list[str]:
    """Ids still in the first layout: flat ``history/<id>/v<N>_*`` files, or a sidecar whose version is not published."""
    ids = {p.parent.name for p in (store.root / "history").glob("*/v*_sidecar.json")}
    for path in (store.root / "sidecars").glob("*.json"):
        try:
            version = json.loads(path.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s cannot be read as a sidecar; it is rebuilt from history/ if a version exists", path)
            continue
        if version not in store.versions(path.stem):
            ids.add(path.stem)
    return sorted(ids)


def migrate(store: RetrainingSet, image_id: str) -> None:
    """Publish every version of a first-layout item as a version folder, then remove its flat files."""
    folder = store.root / "history" / image_id
    flat: dict[int, dict[str, Path]] = {}
    for path in folder.glob("v*_*") if folder.is_dir() else ():
        match = _LEGACY_FILE.match(path.name)
        if match:
            flat.setdefault(int(match.group(1)), {})[match.group(2)] = path
    view = store.root / "sidecars" / f"{image_id}.json"
    view_version = json.loads(view.read_text()).get("version") if view.is_file() else None
    if view_version is not None:
        flat.setdefault(view_version, {}).setdefault(SIDECAR, view)
    published = set(store.versions(image_id))
    for version, files in sorted(flat.items()):
        if version not in published and SIDECAR in files:
            masks = [files.get(MASK)] + ([store.root / "masks" / f"{image_id}_segmentation.png"] if version == view_version else [])
            predictions = [files.get(PREDICTION)] + ([store.root / "predictions" / f"{image_id}_prediction.png"] if version == view_version else [])
            store._publish(image_id, version, _legacy_version(files[SIDECAR], masks, predictions, image_id, version))
            published.add(version)
        for path in files.values() if version in published else ():  # a file without a sidecar stays
            if path.parent == folder:
                path.unlink(missing_ok=True)
    if folder.is_dir():
        fsync_dir(folder)


def _legacy_version(sidecar_path: Path, masks: list[Path | None], predictions: list[Path | None],
                    image_id: str, version: int) -> dict[str, bytes]:
    """The files of a first-layout version: its sidecar (paths updated) and the candidate mask
    whose checksum the sidecar records (or the first present; a mismatch is then reported by check())."""
    side = json.loads(sidecar_path.read_text())
    present = [p for p in masks if p is not None and p.is_file()]
    mask = next((p for p in present if sha256_file(p) == side.get("mask_sha256")), present[0] if present else None)
    if mask is None:
        raise StoreError(f"version {version} of {image_id}: no mask to migrate beside {sidecar_path}")
    prediction = next((p for p in predictions if p is not None and p.is_file()), None)
    side.update({"mask": f"history/{image_id}/v{version}/{MASK}", "prediction": f"history/{image_id}/v{version}/{PREDICTION}",
                 "migrated_from": LEGACY_FORMAT})
    side.setdefault("mask_sha256", sha256_file(mask))
    files = {MASK: mask.read_bytes(), SIDECAR: _json_bytes(side)}
    if prediction is not None:
        files[PREDICTION] = prediction.read_bytes()
    return files
