"""The retraining set: provenance, versioning, atomic saves, manifest rebuild, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

import glassbox_xai.data.io as io_module
from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.data.io import MaskError, read_image, read_mask
from glassbox_xai.hitl.store import RetrainingSet, StoreError

PROVENANCE = {"weights_sha256": "ab" * 32, "variant": "dice", "threshold": 0.5, "annotator": "Dr. Test", "seconds": 42.0}


@pytest.fixture
def pair():
    image_id = split_ids("dev_val")[2]
    path = ISIC_IMAGES / f"{image_id}.jpg"
    truth = read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")
    predicted = np.roll(truth, 12, axis=1)
    return path, read_image(path).shape[:2], truth, predicted


def test_save_writes_isic_layout_with_provenance(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    side = store.save(path, shape, truth, predicted, PROVENANCE)
    root = tmp_path / "set"
    assert np.array_equal(read_mask(root / side["mask"]), truth)
    assert np.array_equal(read_mask(root / side["prediction"]), predicted)
    assert (root / "images" / path.name).read_bytes() == path.read_bytes()
    assert side["model"]["weights_sha256"] == "ab" * 32 and side["annotator"] == "Dr. Test" and side["version"] == 1
    edits = side["edits"]
    assert edits["pixels_added"] == int((truth & ~predicted).sum()) and edits["pixels_removed"] == int((predicted & ~truth).sum())
    assert 0 < edits["dice_prediction_vs_correction"] < 1
    assert store.manifest()["items"][path.stem]["version"] == 1 and store.check() == []


def test_a_second_correction_is_versioned_not_overwritten(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, predicted, predicted, PROVENANCE)
    side = store.save(path, shape, truth, predicted, PROVENANCE)
    assert side["version"] == 2
    history = tmp_path / "set" / "history" / path.stem
    assert np.array_equal(read_mask(history / "v1_segmentation.png"), predicted)
    assert json.loads((history / "v1_sidecar.json").read_text())["version"] == 1


def test_a_failed_save_loses_nothing(tmp_path, pair, monkeypatch):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, predicted, predicted, PROVENANCE)
    before = (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").read_bytes()

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_module.os, "replace", full_disk)
    with pytest.raises(StoreError, match="No space left on device.*previous version is intact"):
        store.save(path, shape, truth, predicted, PROVENANCE)
    monkeypatch.undo()
    assert (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").read_bytes() == before
    assert store.sidecar(path.stem)["version"] == 1 and store.check() == []
    leftovers = [p for p in (tmp_path / "set").rglob(".*") if p.is_file()]
    assert leftovers == []


def test_manifest_is_rebuilt_from_the_files(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, truth, predicted, PROVENANCE)
    original = store.manifest()
    (tmp_path / "set" / "manifest.json").unlink()
    assert store.manifest() == original
    (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").write_bytes(b"tampered")
    assert store.check() == [path.stem]


def test_mask_of_the_wrong_size_is_refused(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    with pytest.raises(MaskError, match=r"corrected mask for .* is \(10, 10\), but the image is \(512, 512\)"):
        store.save(path, shape, np.zeros((10, 10), bool), predicted, PROVENANCE)
    assert store.manifest()["items"] == {}


def test_an_unwritable_folder_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=f"cannot write the retraining set at {blocker / 'set'}"):
        RetrainingSet(blocker / "set")
