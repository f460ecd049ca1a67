"""Fine-tuning from a retraining set: a new bundle with full provenance, before/after table."""

from __future__ import annotations

import numpy as np

from data_paths import ISIC, ISIC_IMAGES, ISIC_MASKS, split_ids
from glassbox_xai.cli import main
from glassbox_xai.data.io import read_image, read_mask
from glassbox_xai.hitl.store import RetrainingSet
from glassbox_xai.model.bundle import load_bundle


def test_finetune_from_corrections_writes_a_child_bundle(tiny_bundle, tmp_path, capsys):
    store = RetrainingSet(tmp_path / "set")
    for image_id in split_ids("dev_val")[:6]:
        path = ISIC_IMAGES / f"{image_id}.jpg"
        truth = read_mask(ISIC_MASKS / f"{image_id}_segmentation.png")
        store.save(path, read_image(path).shape[:2], truth, np.zeros_like(truth), {"variant": "custom", "annotator": "test"})
    held = tmp_path / "held"
    held.mkdir()
    for image_id in split_ids("dev_val")[10:12]:
        (held / f"{image_id}.jpg").write_bytes((ISIC_IMAGES / f"{image_id}.jpg").read_bytes())
        (held / f"{image_id}_segmentation.png").write_bytes((ISIC_MASKS / f"{image_id}_segmentation.png").read_bytes())
    code = main(["finetune", "--set", str(tmp_path / "set"), "--model", str(tiny_bundle), "--epochs", "2",
                 "--mix-original", str(ISIC), "--evaluate-on", str(held)])
    out = capsys.readouterr().out
    assert code == 0 and "epoch 2/2" in out and "| before |" in out and "| after |" in out
    bundle_dir = next((tmp_path / "set" / "models").glob("custom-finetuned-*/bundle"))
    child, parent = load_bundle(bundle_dir), load_bundle(tiny_bundle)
    assert child.card.variant == "finetuned" and child.card.parent == parent.card.weights_sha256
    assert child.card.training_data["sha256"] == store.manifest()["sha256"]
    assert child.card.training_data["n_images"] == 5 and child.card.training_data["n_original_mixed"] == 5
    assert child.card.weights_sha256 != parent.card.weights_sha256
    name = bundle_dir.parent.name
    assert f"registered as version {name}" in out
    assert main(["versions", "--activate", name]) == 0
    listed = capsys.readouterr().out
    assert f"* {name}" in listed and "  dice" in listed  # the new version is active; the shipped ones stay listed
    assert main(["versions", "--activate", "no-such-model"]) == 2
    assert "expected one of" in capsys.readouterr().err


def test_finetune_on_an_empty_set_says_what_to_do(tiny_bundle, tmp_path, capsys):
    assert main(["finetune", "--set", str(tmp_path / "empty"), "--model", str(tiny_bundle)]) == 2
    assert "holds no corrections yet" in capsys.readouterr().err


def test_frozen_batchnorm_keeps_the_parents_statistics(tiny_bundle, rng):
    import keras

    from glassbox_xai.hitl.finetune import freeze_batchnorm

    model = load_bundle(tiny_bundle).model
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before = [np.array(layer.moving_mean) for layer in norms]
    weights_before = np.array(model.trainable_weights[0])
    assert freeze_batchnorm(model) == len(norms) > 0
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    x = rng.random((4, 32, 32, 3)).astype("float32") * 5.0  # far from the statistics the layers hold
    model.fit(x, (rng.random((4, 32, 32, 1)) > 0.5).astype("float32"), epochs=1, verbose=0)
    assert all(np.array_equal(b, np.array(layer.moving_mean)) for b, layer in zip(before, norms))
    assert not np.array_equal(weights_before, np.array(model.trainable_weights[0]))  # the convolutions did learn
