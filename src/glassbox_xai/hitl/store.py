"""The retraining set: expert corrections saved with full provenance, never half-written.

Layout (like ISIC, so the training code reads it as it is)::

    <set>/images/<id>.<ext>                     a copy of the photograph (or images/<id>.ref.json:
                                                its path and sha256, with copy_images=False)
    <set>/masks/<id>_segmentation.png           the corrected mask, 8-bit 0/255, image size
    <set>/predictions/<id>_prediction.png       the model's original prediction
    <set>/sidecars/<id>.json                    provenance and edit statistics
    <set>/history/<id>/v<N>_...                 earlier versions of a correction
    <set>/manifest.json                         every item with its version and checksums

Each file is written to a temporary name and renamed into place, mask and
prediction before the sidecar, the manifest last; a crash or a full disk
mid-save leaves the previous version complete. The manifest can be rebuilt from
the sidecars at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import MaskError, atomic_write, write_mask
from ..metrics import Confusion, scores
from ..model.card import sha256_file

FORMAT = "glassbox-xai-retraining-set/1"


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
    """A folder of corrections; creating one checks that the folder can be written."""

    def __init__(self, root: str | Path, copy_images: bool = True) -> None:
        self.root = Path(root)
        self.copy_images = copy_images
        try:
            for sub in ("images", "masks", "predictions", "sidecars", "history"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-", delete=True)
            probe.close()
        except OSError as exc:
            raise StoreError(f"cannot write the retraining set at {self.root}: {exc.strerror or exc}") from None

    def save(self, image_path: str | Path, image_shape: tuple[int, int], corrected: np.ndarray, predicted: np.ndarray,
             provenance: dict[str, Any]) -> dict[str, Any]:
        """Save one correction (a new version if the image was corrected before); return its sidecar.

        ``provenance`` carries the model bundle's ``weights_sha256`` and ``variant``,
        the ``threshold``, the ``annotator`` and ``seconds`` spent editing.

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
        previous = self.sidecar(image_id)
        version = previous["version"] + 1 if previous else 1
        stats = EditStats.between(predicted, corrected)
        sidecar = {
            "id": image_id,
            "version": version,
            "image": self._image_entry(image_path),
            "mask": f"masks/{image_id}_segmentation.png",
            "prediction": f"predictions/{image_id}_prediction.png",
            "shape": list(image_shape),
            "model": {k: provenance.get(k) for k in ("weights_sha256", "variant", "bundle")},
            "threshold": provenance.get("threshold"),
            "annotator": provenance.get("annotator", ""),
            "saved": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "seconds_spent": provenance.get("seconds"),
            "edits": stats.__dict__,
        }
        try:
            if previous:
                self._archive(image_id, previous["version"])
            write_mask(self.root / sidecar["prediction"], predicted)
            write_mask(self.root / sidecar["mask"], corrected)
            sidecar["mask_sha256"] = sha256_file(self.root / sidecar["mask"])
            write_json(self.root / "sidecars" / f"{image_id}.json", sidecar)
            self.rebuild_manifest()
        except OSError as exc:
            raise StoreError(f"could not save the correction of {image_path.name} in {self.root}: {exc.strerror or exc}; "
                             "the previous version is intact") from None
        return sidecar

    def corrected_ids(self) -> set[str]:
        """Ids with a saved correction (a sidecar: written last, so only complete saves count)."""
        return {path.stem for path in (self.root / "sidecars").glob("*.json")}

    def sidecar(self, image_id: str) -> dict[str, Any] | None:
        path = self.root / "sidecars" / f"{image_id}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def manifest(self) -> dict[str, Any]:
        path = self.root / "manifest.json"
        return json.loads(path.read_text()) if path.is_file() else self.rebuild_manifest()

    def rebuild_manifest(self) -> dict[str, Any]:
        """Rebuild ``manifest.json`` from the sidecars (the source of truth)."""
        items = {}
        for path in sorted((self.root / "sidecars").glob("*.json")):
            side = json.loads(path.read_text())
            items[side["id"]] = {"version": side["version"], "mask": side["mask"], "mask_sha256": side.get("mask_sha256"),
                                 "image": side["image"], "annotator": side["annotator"], "saved": side["saved"]}
        manifest = {"format": FORMAT, "items": items, "sha256": hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()}
        write_json(self.root / "manifest.json", manifest)
        return manifest

    def check(self) -> list[str]:
        """Ids whose mask on disk is not the one their sidecar records (an interrupted
        save: the sidecar is written last; the previous version is in history/)."""
        return [side_id for side_id, item in self.rebuild_manifest()["items"].items()
                if not (self.root / item["mask"]).is_file() or sha256_file(self.root / item["mask"]) != item["mask_sha256"]]

    def _image_entry(self, image_path: Path) -> dict[str, str]:
        digest = sha256_file(image_path)
        if not self.copy_images:
            return {"path": str(image_path.resolve()), "sha256": digest}
        target = self.root / "images" / image_path.name
        if not target.is_file() or sha256_file(target) != digest:
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(image_path, tmp)
            os.replace(tmp, target)
        return {"path": f"images/{image_path.name}", "sha256": digest}

    def _archive(self, image_id: str, version: int) -> None:
        folder = self.root / "history" / image_id
        folder.mkdir(parents=True, exist_ok=True)
        for rel, name in ((f"masks/{image_id}_segmentation.png", "segmentation.png"), (f"predictions/{image_id}_prediction.png", "prediction.png"),
                          (f"sidecars/{image_id}.json", "sidecar.json")):
            source = self.root / rel
            if source.is_file():
                shutil.copyfile(source, folder / f"v{version}_{name}")


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda stream: stream.write(json.dumps(data, indent=2).encode("utf-8")))
