"""The retraining set: expert corrections saved with full provenance, every accepted
version immutable and complete, whatever moment a crash or a power cut strikes.

Layout::

    <set>/history/<id>/v<N>/segmentation.png    version N of the corrected mask, 8-bit 0/255, image size
    <set>/history/<id>/v<N>/prediction.png      the model's original prediction it started from
    <set>/history/<id>/v<N>/sidecar.json        provenance, edit statistics, the mask's sha256
    <set>/images/<id>.<ext>                     a copy of the photograph (or images/<id>.ref.json:
                                                its path and sha256, with copy_images=False)
    <set>/masks/<id>_segmentation.png           the latest accepted mask   \\  copies of the latest
    <set>/predictions/<id>_prediction.png       its prediction              > version, ISIC layout,
    <set>/sidecars/<id>.json                    its sidecar                /  rebuilt on opening
    <set>/manifest.json                         every item's latest version and checksum (derived)
    <set>/store.lock                            serialises saves between processes

``history/`` is the source of truth. A save builds the new version in a private
staging folder (files and folder fsynced) and publishes it with one rename, so a
kill at any instruction leaves either the previous state or the new version
whole, and a published version is never written again. The copies in ``masks/``,
``predictions/``, ``sidecars/`` and the manifest are refreshed afterwards and
re-derived whenever the set is opened, which also removes the leftovers of
interrupted saves. Sets written by the first layout (``history/<id>/v<N>_*``
files) are migrated on opening.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.io import MaskError, atomic_write, read_mask
from ..metrics import Confusion, scores
from ..model.card import sha256_file
from .durable import STAGING_PREFIX, FolderLock, fsync_dir, new_staging, publish, remove_tree, write_file

FORMAT = "glassbox-xai-retraining-set/2"
MASK, PREDICTION, SIDECAR = "segmentation.png", "prediction.png", "sidecar.json"
LOCK_FILE = "store.lock"
VIEW_FOLDERS = ("images", "masks", "predictions", "sidecars")
_VERSION = re.compile(r"^v(\d+)$")

log = logging.getLogger(__name__)


class StoreError(OSError):
    """The retraining set cannot be written or read; the message names the path."""


@dataclass(frozen=True)
class EditStats:
    pixels_added: int
    pixels_removed: int
    dice_prediction_vs_correction: float

    @classmethod
    def between(cls, predicted: np.ndarray, corrected: np.ndarray) -> "EditStats":
        added = int(np.count_nonzero(corrected & ~predicted))
        removed = int(np.count_nonzero(predicted & ~corrected))
        return cls(added, removed, scores(Confusion.from_masks(predicted, corrected))["dice"])


class RetrainingSet:
    """A folder of corrections. Opening one checks that it can be written, removes the
    leftovers of interrupted saves, migrates the first layout and re-derives the copies."""

    def __init__(self, root: str | Path, copy_images: bool = True) -> None:
        self.root = Path(root)
        self.copy_images = copy_images
        try:
            for sub in (*VIEW_FOLDERS, "history"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(self.root / LOCK_FILE)
            with self._lock:
                probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-", delete=True)
                probe.close()
                self.leftovers_removed = self._remove_leftovers()
                from .legacy import legacy_ids, migrate

                for image_id in legacy_ids(self):
                    migrate(self, image_id)
                for image_id in self._history_ids():
                    self._refresh_copies(image_id)
                self._write_manifest()
        except StoreError:
            raise  # a damaged version: the message names its file
        except OSError as exc:
            raise StoreError(f"cannot write the retraining set at {self.root}: {exc.strerror or exc}") from None

    # -- saving ---------------------------------------------------------------
    def save(self, image_path: str | Path, image_shape: tuple[int, int], corrected: np.ndarray, predicted: np.ndarray,
             provenance: dict[str, Any]) -> dict[str, Any]:
        """Save one correction as the image's next version; return its sidecar once it is durable.

        ``provenance`` carries the model that made the prediction (see
        :class:`~glassbox_xai.hitl.provenance.Provenance`: ``weights_sha256``, ``variant``,
        ``bundle``, ``label``, ``threshold``), the ``annotator`` and ``seconds`` spent editing.

        Raises:
            MaskError: a mask's size differs from the photograph's.
            StoreError: the disk is full or the folder unwritable (nothing is lost).
        """
        image_path = Path(image_path)
        image_id = image_path.stem
        for name, mask in (("corrected mask", corrected), ("prediction", predicted)):
            if np.asarray(mask).shape != tuple(image_shape):
                raise MaskError(f"{name} for {image_path.name} is {np.asarray(mask).shape}, but the image is {tuple(image_shape)}; expected the same size")
        corrected, predicted = np.asarray(corrected) > 0, np.asarray(predicted) > 0
        mask_png, prediction_png = _png(corrected), _png(predicted)
        with self._lock:
            try:
                version = max(self.versions(image_id), default=0) + 1
                folder = f"history/{image_id}/v{version}"
                sidecar = {
                    "id": image_id,
                    "version": version,
                    "image": self._image_entry(image_path),
                    "mask": f"{folder}/{MASK}",
                    "prediction": f"{folder}/{PREDICTION}",
                    "shape": list(image_shape),
                    "model": {k: provenance.get(k) for k in ("weights_sha256", "variant", "bundle", "label")},
                    "threshold": provenance.get("threshold"),
                    "annotator": provenance.get("annotator", ""),
                    "saved": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
                    "seconds_spent": provenance.get("seconds"),
                    "edits": EditStats.between(predicted, corrected).__dict__,
                    "mask_sha256": hashlib.sha256(mask_png).hexdigest(),
                }
                self._publish(image_id, version, {MASK: mask_png, PREDICTION: prediction_png, SIDECAR: _json_bytes(sidecar)})
            except OSError as exc:
                raise StoreError(f"could not save the correction of {image_path.name} in {self.root}: {exc.strerror or exc}; "
                                 "the previous version is intact") from None
            try:  # the version is accepted; the copies are conveniences, re-derived on the next opening
                self._refresh_copies(image_id)
                self._write_manifest()
            except OSError as exc:
                log.warning("version %d of %s is saved in %s, but its copies could not be refreshed (%s); "
                            "they are rebuilt when the set is next opened", version, image_id, self.root / folder, exc)
        return sidecar

    def _publish(self, image_id: str, version: int, files: dict[str, bytes]) -> None:
        folder = self.root / "history" / image_id
        new_folder = not folder.is_dir()
        staging = new_staging(folder)
        try:
            if new_folder:
                fsync_dir(folder.parent)
            for name, data in files.items():
                write_file(staging / name, data)
            publish(staging, folder / f"v{version}")
        except BaseException:
            remove_tree(staging)
            raise

    def _image_entry(self, image_path: Path) -> dict[str, str]:
        digest = sha256_file(image_path)
        if not self.copy_images:
            return {"path": str(image_path.resolve()), "sha256": digest}
        target = self.root / "images" / image_path.name
        if not target.is_file() or sha256_file(target) != digest:
            with open(image_path, "rb") as source:
                atomic_write(target, lambda stream: shutil.copyfileobj(source, stream))
        return {"path": f"images/{image_path.name}", "sha256": digest}

    # -- reading --------------------------------------------------------------
    def versions(self, image_id: str) -> list[int]:
        """The accepted (published) versions of ``image_id``, oldest first."""
        folder = self.root / "history" / image_id
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for m in map(_VERSION.match, (p.name for p in folder.iterdir())) if m)

    def read_version(self, image_id: str, version: int) -> np.ndarray:
        """The corrected mask of any accepted version, checked against its sidecar's checksum.

        Raises:
            StoreError: the version was never accepted, or its mask is missing or differs from its sidecar.
        """
        path = self.verified_mask(image_id, version)
        try:
            return read_mask(path, expected_shape=tuple(self._version_sidecar(image_id, version)["shape"]))
        except MaskError as exc:
            raise StoreError(f"version {version} of {image_id} is unreadable: {exc}") from None

    def verified_mask(self, image_id: str, version: int) -> Path:
        """The path of an accepted version's mask, after checking it matches its sidecar."""
        side = self._version_sidecar(image_id, version)
        path = self.root / "history" / image_id / f"v{version}" / MASK
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise StoreError(f"{path} cannot be read ({exc.strerror or exc}); expected version {version} of {image_id}") from None
        if digest != side.get("mask_sha256"):
            raise StoreError(f"{path} does not match the sha256 recorded in its sidecar ({side.get('mask_sha256')}); "
                             f"version {version} of {image_id} is damaged")
        return path

    def _version_sidecar(self, image_id: str, version: int) -> dict[str, Any]:
        path = self.root / "history" / image_id / f"v{version}" / SIDECAR
        if not path.parent.is_dir():
            raise StoreError(f"{image_id} has no accepted version {version} in {self.root}; "
                             f"accepted versions: {self.versions(image_id) or 'none'}")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path} cannot be read as a sidecar: {exc}") from None

    def corrected_ids(self) -> set[str]:
        """Ids with an accepted correction (one listing of ``sidecars/``, re-derived on opening)."""
        return {path.stem for path in (self.root / "sidecars").glob("*.json")}

    def sidecar(self, image_id: str) -> dict[str, Any] | None:
        """The sidecar of the latest accepted version of ``image_id``, or ``None``."""
        versions = self.versions(image_id)
        return self._version_sidecar(image_id, versions[-1]) if versions else None

    def manifest(self) -> dict[str, Any]:
        """Every item's latest accepted version, derived from ``history/`` (and saved as ``manifest.json``)."""
        with self._lock:
            return self._write_manifest()

    def rebuild_manifest(self) -> dict[str, Any]:
        """Rebuild ``manifest.json`` from the published versions (the source of truth)."""
        return self.manifest()

    def check(self) -> list[str]:
        """Ids with a damaged version (a mask that differs from its sidecar) or a copy in
        ``masks/`` or ``sidecars/`` that is not their latest version (re-derived on opening)."""
        damaged = []
        for image_id in self._history_ids():
            versions = self.versions(image_id)
            try:
                for version in versions:
                    self.verified_mask(image_id, version)
                latest = self.root / "history" / image_id / f"v{versions[-1]}"
                if any(_read(self.root / copy) != _read(latest / name) for copy, name in self._copies(image_id)):
                    damaged.append(image_id)
            except StoreError:
                damaged.append(image_id)
        return damaged

    # -- deriving, cleaning, migrating ----------------------------------------
    def _history_ids(self) -> list[str]:
        return sorted(p.name for p in (self.root / "history").iterdir() if p.is_dir() and self.versions(p.name))

    @staticmethod
    def _copies(image_id: str) -> list[tuple[str, str]]:
        return [(f"masks/{image_id}_segmentation.png", MASK), (f"predictions/{image_id}_prediction.png", PREDICTION),
                (f"sidecars/{image_id}.json", SIDECAR)]  # the sidecar last: corrected_ids() lists it

    def _refresh_copies(self, image_id: str) -> None:
        latest = self.root / "history" / image_id / f"v{max(self.versions(image_id))}"
        for copy, name in self._copies(image_id):
            data = _read(latest / name)
            if data is not None and _read(self.root / copy) != data:
                _write_copy(self.root / copy, data)

    def _write_manifest(self) -> dict[str, Any]:
        items = {}
        for image_id in self._history_ids():
            side = self.sidecar(image_id)
            items[image_id] = {"version": side["version"], "mask": side["mask"], "mask_sha256": side.get("mask_sha256"),
                               "image": side["image"], "annotator": side.get("annotator", ""), "saved": side.get("saved")}
        manifest = {"format": FORMAT, "items": items, "sha256": hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()}
        data = _json_bytes(manifest)
        if _read(self.root / "manifest.json") != data:
            _write_copy(self.root / "manifest.json", data)
        return manifest

    def _remove_leftovers(self) -> int:
        """Remove what interrupted saves left (called under the lock: no save is running)."""
        found = [p for p in self.root.iterdir() if p.name.startswith((".write-test-", ".manifest.json."))]
        for sub in VIEW_FOLDERS:
            found += [p for p in (self.root / sub).iterdir() if p.name.startswith(".")]
        for folder in (p for p in (self.root / "history").iterdir() if p.is_dir()):
            found += [p for p in folder.iterdir() if p.name.startswith((STAGING_PREFIX, "."))]
        for path in found:
            remove_tree(path)
        for folder in (p for p in (self.root / "history").iterdir() if p.is_dir()):
            if not any(folder.iterdir()):
                folder.rmdir()
        if found:
            log.info("removed %d leftover(s) of interrupted saves from %s", len(found), self.root)
        return len(found)


def _png(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _json_bytes(data: dict) -> bytes:
    return json.dumps(data, indent=2).encode("utf-8")


def _write_copy(path: Path, data: bytes) -> None:
    """Replace a derived file (a copy of the latest version, the manifest) in one rename. Not
    fsynced: after a power cut, opening the set re-derives whatever did not reach the disk."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda stream: stream.write(_json_bytes(data)))
