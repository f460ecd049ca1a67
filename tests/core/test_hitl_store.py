"""The retraining set: provenance, immutable versions, crash recovery, migration, bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import glassbox_xai.hitl.store as store_module
from data_paths import ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.data.io import MaskError, read_image, read_mask, write_mask
from glassbox_xai.hitl.legacy import LEGACY_FORMAT
from glassbox_xai.hitl.store import RetrainingSet, StoreError

PROVENANCE = {"weights_sha256": "ab" * 32, "variant": "dice", "threshold": 0.5, "annotator": "Dr. Test", "seconds": 42.0}
CRASH_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "store_crash.py"


@pytest.fixture
def pair():
    image_id = split_ids("dev_val")[2]
    path = ISIC_IMAGES / f"{image_id}.jpg"
    truth = read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")
    predicted = np.roll(truth, 12, axis=1)
    return path, read_image(path).shape[:2], truth, predicted


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".")]


def test_save_writes_isic_layout_with_provenance(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    side = store.save(path, shape, truth, predicted, PROVENANCE)
    root = tmp_path / "set"
    assert np.array_equal(read_mask(root / side["mask"]), truth)
    assert np.array_equal(read_mask(root / side["prediction"]), predicted)
    assert np.array_equal(read_mask(root / "masks" / f"{path.stem}_segmentation.png"), truth)
    assert json.loads((root / "sidecars" / f"{path.stem}.json").read_text()) == side
    assert (root / "images" / path.name).read_bytes() == path.read_bytes()
    assert side["model"]["weights_sha256"] == "ab" * 32 and side["annotator"] == "Dr. Test" and side["version"] == 1
    edits = side["edits"]
    assert edits["pixels_added"] == int((truth & ~predicted).sum()) and edits["pixels_removed"] == int((predicted & ~truth).sum())
    assert 0 < edits["dice_prediction_vs_correction"] < 1
    assert store.manifest()["items"][path.stem]["version"] == 1 and store.check() == []


def test_every_version_stays_readable(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    masks = [predicted, truth, np.flipud(truth)]
    sides = [store.save(path, shape, mask, predicted, PROVENANCE) for mask in masks]
    assert [s["version"] for s in sides] == [1, 2, 3] and store.versions(path.stem) == [1, 2, 3]
    reopened = RetrainingSet(tmp_path / "set")
    for version, mask in enumerate(masks, start=1):
        assert np.array_equal(reopened.read_version(path.stem, version), mask)
    assert reopened.sidecar(path.stem) == sides[-1]
    assert reopened.manifest()["items"][path.stem]["mask"] == f"history/{path.stem}/v3/segmentation.png"
    with pytest.raises(StoreError, match=rf"{path.stem} has no accepted version 4 in .*accepted versions: \[1, 2, 3\]"):
        reopened.read_version(path.stem, 4)


def test_a_damaged_version_is_reported_not_returned(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, truth, predicted, PROVENANCE)
    version_mask = tmp_path / "set" / "history" / path.stem / "v1" / "segmentation.png"
    write_mask(version_mask, predicted)
    with pytest.raises(StoreError, match=rf"{version_mask} does not match the sha256 recorded in its sidecar"):
        store.read_version(path.stem, 1)
    assert store.check() == [path.stem]


def test_a_failed_save_loses_nothing(tmp_path, pair, monkeypatch):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, predicted, predicted, PROVENANCE)
    before = (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").read_bytes()
    real_write = store_module.write_file

    def full_disk(target, data):  # half the file reaches the disk, then ENOSPC
        real_write(target, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "write_file", full_disk)
    with pytest.raises(StoreError, match="No space left on device.*previous version is intact"):
        store.save(path, shape, truth, predicted, PROVENANCE)
    monkeypatch.undo()
    assert (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").read_bytes() == before
    assert store.versions(path.stem) == [1] and store.sidecar(path.stem)["version"] == 1 and store.check() == []
    assert leftovers(tmp_path / "set") == []
    assert store.save(path, shape, truth, predicted, PROVENANCE)["version"] == 2


def test_opening_recovers_from_a_kill_at_any_step(tmp_path, pair):
    """What a kill leaves at each step of a save: a half-built staging folder, a temporary copy,
    copies still showing the previous version. Opening restores a clean, consistent set."""
    path, shape, truth, predicted = pair
    root = tmp_path / "set"
    store = RetrainingSet(root)
    store.save(path, shape, predicted, predicted, PROVENANCE)
    old_copies = {p: p.read_bytes() for p in (root / "masks").iterdir()} | {p: p.read_bytes() for p in (root / "sidecars").iterdir()}
    store.save(path, shape, truth, predicted, PROVENANCE)
    for copy, data in old_copies.items():  # killed after publishing v2, before its copies
        copy.write_bytes(data)
    staging = root / "history" / path.stem / ".staging-dead"  # killed while building v3
    staging.mkdir()
    (staging / "segmentation.png").write_bytes(b"\x89PNG half")
    (root / "masks" / f".{path.stem}_segmentation.png.1234.tmp").write_bytes(b"half")
    (root / ".manifest.json.abcd.tmp").write_text("{")
    (root / ".write-test-xyz").write_text("")
    assert store.check() == [path.stem]

    reopened = RetrainingSet(root)
    assert reopened.leftovers_removed == 4 and leftovers(root) == []
    assert reopened.check() == [] and reopened.versions(path.stem) == [1, 2]
    assert np.array_equal(read_mask(root / "masks" / f"{path.stem}_segmentation.png"), truth)
    assert reopened.save(path, shape, np.fliplr(truth), predicted, PROVENANCE)["version"] == 3
    assert np.array_equal(reopened.read_version(path.stem, 2), truth)


def test_the_first_layout_is_migrated(tmp_path, pair):
    """A set written by the first store, interrupted mid re-save: masks/ holds an unaccepted
    mask, the accepted v2 survives only as its history copy. Opening keeps every accepted version."""
    path, shape, truth, predicted = pair
    root, image_id = tmp_path / "set", path.stem
    history = root / "history" / image_id
    history.mkdir(parents=True)
    write_mask(history / "v1_segmentation.png", predicted)
    write_mask(history / "v1_prediction.png", predicted)
    write_mask(history / "v2_segmentation.png", truth)
    write_mask(root / "masks" / f"{image_id}_segmentation.png", np.flipud(truth))  # never accepted
    write_mask(root / "predictions" / f"{image_id}_prediction.png", predicted)
    for version, mask_file in ((1, history / "v1_segmentation.png"), (2, history / "v2_segmentation.png")):
        side = {"id": image_id, "version": version, "image": {"path": f"images/{path.name}", "sha256": "0"},
                "mask": f"masks/{image_id}_segmentation.png", "prediction": f"predictions/{image_id}_prediction.png",
                "shape": list(shape), "annotator": "old", "saved": "2024-01-01T00:00:00+00:00",
                "mask_sha256": store_module.sha256_file(mask_file)}
        target = history / "v1_sidecar.json" if version == 1 else root / "sidecars" / f"{image_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(side))

    store = RetrainingSet(root)
    assert store.versions(image_id) == [1, 2] and store.check() == []
    assert np.array_equal(store.read_version(image_id, 1), predicted) and np.array_equal(store.read_version(image_id, 2), truth)
    assert np.array_equal(read_mask(root / "masks" / f"{image_id}_segmentation.png"), truth)
    assert sorted(p.name for p in history.iterdir()) == ["v1", "v2"]
    assert store.sidecar(image_id)["migrated_from"] == LEGACY_FORMAT
    assert store.save(path, shape, truth, predicted, PROVENANCE)["version"] == 3


def test_a_version_folder_without_its_sidecar_is_named_on_opening(tmp_path, pair):
    path, shape, truth, predicted = pair
    RetrainingSet(tmp_path / "set").save(path, shape, truth, predicted, PROVENANCE)
    sidecar = tmp_path / "set" / "history" / path.stem / "v1" / "sidecar.json"
    sidecar.unlink()  # damaged by hand or by the disk: never by a save
    with pytest.raises(StoreError, match=rf"^{sidecar} cannot be read as a sidecar"):
        RetrainingSet(tmp_path / "set")


def test_concurrent_savers_never_share_a_version(tmp_path, pair):
    """Two openings of one set (as the napari process and a second process) saving at once:
    the lock gives every save its own version, and all of them stay readable."""
    path, shape, truth, predicted = pair
    stores = [RetrainingSet(tmp_path / "set"), RetrainingSet(tmp_path / "set")]
    masks = {(n, k): np.roll(truth, 7 * k + n, axis=0) for n in range(2) for k in range(6)}
    saved: dict[int, tuple[int, int]] = {}

    def saver(n: int) -> None:
        for k in range(6):
            saved[stores[n].save(path, shape, masks[n, k], predicted, PROVENANCE)["version"]] = (n, k)

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(saved) == list(range(1, 13)) and stores[0].versions(path.stem) == list(range(1, 13))
    for version, key in saved.items():
        assert np.array_equal(stores[1].read_version(path.stem, version), masks[key])
    assert stores[0].check() == []


def test_files_follow_the_umask(tmp_path, pair):
    path, shape, truth, predicted = pair
    old = os.umask(0o027)
    try:
        store = RetrainingSet(tmp_path / "set")
        side = store.save(path, shape, truth, predicted, PROVENANCE)
    finally:
        os.umask(old)
    root = tmp_path / "set"
    for rel in (side["mask"], side["prediction"], f"masks/{path.stem}_segmentation.png", f"sidecars/{path.stem}.json",
                "manifest.json", f"images/{path.name}"):
        assert stat.S_IMODE((root / rel).stat().st_mode) == 0o640, rel


def test_manifest_is_rebuilt_from_the_files(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, truth, predicted, PROVENANCE)
    original = store.manifest()
    (tmp_path / "set" / "manifest.json").unlink()
    assert store.manifest() == original
    (tmp_path / "set" / "manifest.json").write_text('{"items": {}}')  # stale
    assert RetrainingSet(tmp_path / "set").manifest() == original
    assert json.loads((tmp_path / "set" / "manifest.json").read_text()) == original
    (tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png").write_bytes(b"tampered")
    assert store.check() == [path.stem]


def test_fine_tuning_reads_the_accepted_latest_versions(tmp_path, pair):
    from glassbox_xai.hitl.finetune import set_samples

    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    store.save(path, shape, predicted, predicted, PROVENANCE)
    store.save(path, shape, truth, predicted, PROVENANCE)
    write_mask(tmp_path / "set" / "masks" / f"{path.stem}_segmentation.png", np.flipud(truth))  # a copy nobody accepted
    [sample] = set_samples(store)
    assert sample.mask == tmp_path / "set" / "history" / path.stem / "v2" / "segmentation.png"
    assert np.array_equal(read_mask(sample.mask), truth)
    write_mask(sample.mask, predicted)  # the accepted file itself damaged: refused, not trained on
    with pytest.raises(StoreError, match="does not match the sha256 recorded in its sidecar"):
        set_samples(store)


def test_mask_of_the_wrong_size_is_refused(tmp_path, pair):
    path, shape, truth, predicted = pair
    store = RetrainingSet(tmp_path / "set")
    with pytest.raises(MaskError, match=r"corrected mask for .* is \(10, 10\), but the image is \(512, 512\)"):
        store.save(path, shape, np.zeros((10, 10), bool), predicted, PROVENANCE)
    assert store.manifest()["items"] == {} and store.versions(path.stem) == []


def test_an_unwritable_folder_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=f"cannot write the retraining set at {blocker / 'set'}"):
        RetrainingSet(blocker / "set")


def test_twenty_kills_lose_nothing(tmp_path):
    """The crash-injection benchmark, short: kill -9 a saving process 20 times, check every acknowledged version."""
    spec = importlib.util.spec_from_file_location("store_crash", CRASH_SCRIPT)
    crash = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = crash
    try:
        spec.loader.exec_module(crash)
        result = crash.crash_run(tmp_path / "set", kills=20, seed=1, log=lambda line: None)
    finally:
        sys.modules.pop(spec.name, None)
    assert result["saves_acknowledged"] > 20 and result["published_versions"] >= result["saves_acknowledged"]
    assert {k: result[k] for k in crash.CHECKS} == dict.fromkeys(crash.CHECKS, 0)
